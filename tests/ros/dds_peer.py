"""One side of the DDS round-trip test, run as its own process.

responder: echoes every rlhf_msgs message from /rt/<Name> to /rt/<Name>/echo and serves every
           rlhf_msgs service at /rt/<Name>, answering with a response filled from a salt that
           hashes the whole request (so a response only matches if the request arrived intact).
requester: publishes one filled message per type, waits for its echo, calls every service, and
           writes a JSON report of what it sent, expected and received.
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_fixtures import canonical, fill, message_names, msg_class, service_names, srv_class

from rlhf_nodes.msg_dict import message_to_dict

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def response_salt(name: str, request) -> str:
    return f"{name}:response:{canonical(message_to_dict(request))}"


class Responder(Node):
    def __init__(self) -> None:
        super().__init__("rlhf_msgs_responder")
        self._keep = []
        for name in message_names():
            cls = msg_class(name)
            pub = self.create_publisher(cls, f"/rt/{name}/echo", QOS)
            self._keep.append(self.create_subscription(cls, f"/rt/{name}", lambda m, p=pub: p.publish(m), QOS))
            self._keep.append(pub)
        for name in service_names():
            cls = srv_class(name)

            def callback(request, response, name=name):
                return fill(response, response_salt(name, request))

            self._keep.append(self.create_service(cls, f"/rt/{name}", callback))


def run_requester(report_path: str, timeout: float) -> int:
    node = Node("rlhf_msgs_requester")
    report = {"messages": {}, "services": {}}
    received: dict[str, object] = {}
    pubs = {}
    for name in message_names():
        cls = msg_class(name)
        pubs[name] = node.create_publisher(cls, f"/rt/{name}", QOS)
        node.create_subscription(
            cls, f"/rt/{name}/echo", lambda m, n=name: received.setdefault(n, message_to_dict(m)), QOS
        )
    sent = {name: fill(msg_class(name)(), f"{name}:request") for name in message_names()}
    deadline = time.monotonic() + timeout
    # Republish until each echo arrives: discovery of the echo subscription takes a moment.
    while len(received) < len(sent) and time.monotonic() < deadline:
        for name, msg in sent.items():
            if name not in received and pubs[name].get_subscription_count() > 0:
                pubs[name].publish(msg)
        rclpy.spin_once(node, timeout_sec=0.2)
    for name, msg in sent.items():
        report["messages"][name] = {"sent": message_to_dict(msg), "received": received.get(name)}

    for name in service_names():
        cls = srv_class(name)
        client = node.create_client(cls, f"/rt/{name}")
        entry = {"request": None, "expected": None, "received": None}
        if client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())):
            request = fill(cls.Request(), f"{name}:request")
            expected = fill(cls.Response(), response_salt(name, request))
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=max(0.1, deadline - time.monotonic()))
            entry["request"] = message_to_dict(request)
            entry["expected"] = message_to_dict(expected)
            if future.done() and future.result() is not None:
                entry["received"] = message_to_dict(future.result())
        report["services"][name] = entry
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    node.destroy_node()
    return 0


def main() -> int:
    role = sys.argv[1]
    rclpy.init()
    try:
        if role == "responder":
            node = Responder()
            try:
                rclpy.spin(node)
            except KeyboardInterrupt:
                pass
            return 0
        return run_requester(sys.argv[2], float(sys.argv[3]))
    finally:
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
