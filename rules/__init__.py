"""What the wire contract (``schemas``) and the engine (``service.engine``) share: the
refusal they raise, so neither layer imports the other to report one."""
