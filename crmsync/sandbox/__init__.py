"""Sandbox CRM servers: local HTTP(S) servers that behave like the documented Salesforce
and HubSpot APIs, for the tests, the benchmarks and ``crmsync demo``."""
