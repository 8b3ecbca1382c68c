"""Insight from each company's own data: triage suggestions voted by its solved tickets,
usage analytics from rollups kept by the database, and knowledge gaps."""
