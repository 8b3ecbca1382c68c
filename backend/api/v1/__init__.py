"""Version 1 of the tenant API: every endpoint needs an API key and X-Company-ID."""
