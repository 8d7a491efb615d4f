"""Storage drivers: the protocol both keep (base), queues in one process's memory (memory), and
queues in Redis, shared by every host (redis)."""
