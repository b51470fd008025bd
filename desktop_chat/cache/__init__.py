"""The disposable read cache: key scheme, codec, Redis and in-process stores, TTL policy."""
