"""crmsync: Hamsa voice-AI calls, logged in Salesforce or HubSpot.

The flow is the folder tree: ``web`` receives webhooks, ``events`` normalises and
de-duplicates them, ``queue`` stores them durably on RQ, ``jobs`` syncs one call,
``mapping`` decides what to write and ``crm`` talks to the CRM.
"""

__version__ = "0.1.0"
