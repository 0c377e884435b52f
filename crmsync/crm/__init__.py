"""Talking to a CRM: one small contract (``base.Connector``), two implementations."""
