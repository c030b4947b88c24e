"""Collecting numbers: requests, drafts, receiving, opening and the operator's decisions (the
public form's intake, sharing terms, history, subjects and sealed parts), campaigns, target
lists, links, mailings, receipts, dunning, kits, paper, verification, ID images."""
