"""The control plane end to end: resolvers, balancers, subchannels
and connectivity against real backends."""
