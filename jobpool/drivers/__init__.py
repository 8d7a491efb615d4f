"""Storage drivers: the protocol both keep (base), queues in one process's memory (memory),
queues in Redis, shared by every host (redis), and `factory.make_driver`, which picks one."""
