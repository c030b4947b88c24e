"""MyNumber Vault: the admin portal, its services and the ``mynumber`` command.

Importing a package here loads only what that package needs: the portal is built by
``app.web.factory.create_app``, the command by ``app.cli``. ``docs/architecture.md`` is the map.
"""
