"""The peer servers of the interop matrix build and answer."""
