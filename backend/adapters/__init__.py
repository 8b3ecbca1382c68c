"""Platform adapters: each turns one helpdesk or review platform's API into SourceDocuments.

See :mod:`backend.adapters.base` for the contract, :mod:`backend.adapters.http` for the shared
HTTP behaviour, and :mod:`backend.adapters.registry` to build an adapter from connector input.
"""
