"""Shared test doubles: the fake Asterisk (AGI channels, the manager, a whole PBX).

One place, so that every test talks to the same fakes and the fakes are
checked once against recordings of a real Asterisk 22 (tests/data/asterisk22/).
"""
