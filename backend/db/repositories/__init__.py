"""All SQL lives here, one module per aggregate. Repositories take a tenant-scoped session."""
