"""The admin portal's web layer: Flask-AppBuilder views by area, sign-in and identity, request hardening."""
