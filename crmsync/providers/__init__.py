"""Voice-AI platforms other than Hamsa: Retell, Vapi, ElevenLabs and Bland (SPEC §4).

One module per platform (``retell``, ``vapi``, ``elevenlabs``, ``bland``), each with the same
two functions, so that the web process treats them alike; ``registry.PLATFORMS`` lists them.
Their settings are ``crmsync.provider_settings``, in the settings layer (it imports nothing
of crmsync but ``errors``), so that ``crmsync.settings`` reads them without this package.
"""
