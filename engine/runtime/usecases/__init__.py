"""The engine's use cases (#23): each a plain synchronous function over one unit of work (the
caller's `Store.unit()`, whose session the repositories take), given the ports it needs (`Clock`,
the bus), run off the event loop by one `asyncio.to_thread`."""
