"""Running the service: billing, monthly reports, the inquiry desk, governance, the service manual."""
