"""Key custody and encryption: key providers (file ring, PKCS#11 HSM), field envelopes, HPKE sealing, sealed files, key operations."""
