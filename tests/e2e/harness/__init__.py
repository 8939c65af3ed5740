"""Self-tests of the test harness: the grpcio servers and the scripted h2
peer."""
