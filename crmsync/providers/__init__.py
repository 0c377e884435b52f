"""Voice-AI platforms other than Hamsa: Retell, Vapi, ElevenLabs and Bland (SPEC §4).

One module per platform (``retell``, ``vapi``, ``elevenlabs``, ``bland``), each with the same
two functions, so that the web process treats them alike; ``registry.PLATFORMS`` lists them.
``config`` holds their settings and imports nothing else of crmsync, so that
``crmsync.settings`` can read them without loading the normalisers.
"""
