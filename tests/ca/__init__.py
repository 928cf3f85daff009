"""The tests of fedgate's online CA: step-ca's HTTPS API, one-time tokens, enrollment, mTLS
renewal and federation, with real `fedgate ca` processes, curl, openssl and Python's ssl.

A package, so that its modules import as ca.* (tests/test_federation.py uses ca.helpers too)."""
