"""Subprocess group member used by test_groups.py (so it can be kill -9'd).

    python group_member.py BOOTSTRAP GROUP TOPIC [key=value ...]

Prints "ASSIGNED <n>" whenever its assignment changes, then keeps polling.
"""

import sys

from confluent_kafka import Consumer


def main():
    bootstrap, group, topic = sys.argv[1:4]
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
    }
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        conf[k] = v
    c = Consumer(conf)
    c.subscribe([topic])
    last = None
    while True:
        c.poll(0.1)
        n = len(c.assignment())
        if n != last:
            print(f"ASSIGNED {n}", flush=True)
            last = n


if __name__ == "__main__":
    main()
