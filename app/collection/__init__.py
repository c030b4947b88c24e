"""Collecting numbers: requests, the public form's intake, campaigns, target lists, links, mailings, receipts, dunning, kits, paper, verification, ID images."""
