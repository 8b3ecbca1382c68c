"""The company console's people: users with roles, their passwords, sessions and invitations.

The HTTP side lives in :mod:`backend.api.console` (``/console/api``) and in the auth
dependency, which accepts the console cookie as a credential for ``/v1``.
"""
