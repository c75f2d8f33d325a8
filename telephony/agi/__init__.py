"""FastAGI: Asterisk's ``AGI(agi://host:port/route,...)`` answered by cti.

* ``protocol``: the wire format without I/O (request header block, commands, responses);
* ``route``: the routing decision as the channel variables the dialplan reads (pure);
* ``server``: the asyncio-streams server owning each session;
* ``plugin``: the aiohttp cleanup context that runs the server while the app runs.

Nothing is imported here, so the pure modules load no I/O framework.
"""
