"""Collection screens, one module per workflow: campaigns (the client orders and follows a
collection, the operator sends it), mailings (deliveries and print batches), paper (postal
intake with blind double keying) and verification (the queue of received submissions).

Thin, like every view here: read the form, call the service (which checks the policy and
audits), render. Numbers are only ever *entered* on these screens (paper keying, never echoed
back) or shown on the opened case to the operator who claimed it.
"""
