"""The AMI link to Asterisk, by protocol concept:

* ``protocol``: the asyncio protocol, bytes -> ``telephony.frames.FrameParser`` -> frames (what is
  kept from panoramisk and what is replaced, and why, is said there);
* ``actions``: encoding an action, answers, the errors an action ends with (pure);
* ``pending``: which frames answer which pending action;
* ``filters``: the login event mask, per-session and manager.conf event filters, their Python
  mirror (pure);
* ``sinks``: delivering events and resyncs to the sinks;
* ``link``: ``AmiClient``, the supervised connection (login, filters, resync, ping, reconnect).

Nothing is imported here, so the pure modules (``actions``, ``filters``) load no I/O framework.
"""
