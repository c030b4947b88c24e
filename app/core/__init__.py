"""Rules every layer shares: the number itself, Japanese time and the business calendar, log masking, the acting person."""
