"""Tenancy: who a company is, how its API keys work, and how a request becomes a tenant."""
