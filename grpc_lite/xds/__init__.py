"""xDS: `xds:///` targets served by a control plane (gRFC A27, A74). Loaded on first use."""
