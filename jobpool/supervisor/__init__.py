"""What runs only in the master of `jobpool start`: its loop (master), which workers it wants
(plan), its record of each child and how it forks one (children), what runs in a child right
after the fork (child_main), why a child exited and when to restart it (restarts), the board a
child writes its job on (board), signals, systemd notifications and Prometheus metrics."""
