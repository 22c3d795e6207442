"""The kit both emulators share: app factory, clock, background tasks, fault injection, raw
ASGI answers. Provider behaviour (error bodies, rate-limit headers, which paths are never
faulted) stays in each emulator and is passed in; the kit imports neither emulator.
"""
