"""What runs only in the master of `jobpool start`: its loop (master), which workers it wants
(plan), its record of each child and how it forks one (children), what runs in a child right
after the fork (child_main), what a child reports on its pipe (reports) and its board (board),
why a child exited and when to restart it (restarts), its work in Redis (handback: requeues and
leases), signals, systemd notifications and Prometheus metrics."""
