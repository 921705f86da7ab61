"""A web user's XMPP client for tests/xmpp.rs (slixmpp 1.8): logs in over
STARTTLS, prints its roster, the call bridge's disco#items and a space's
join details, one per line; or prints AUTH FAILED. Every wait is bounded.

usage: xmpp_client.py HOST PORT JID PASSWORD COMPONENT [MECHANISM]
"""
import asyncio
import ssl
import sys

import slixmpp

host, port, jid, password, component = sys.argv[1:6]
mechanism = sys.argv[6] if len(sys.argv) > 6 else None


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password, sasl_mech=mechanism)
        # The server's certificate is the test's self-signed one.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin("xep_0030")
        self.done = self.loop.create_future()
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_all_auth", self.failed)
        self.add_event_handler("disconnected", self.gone)

    def finish(self):
        if not self.done.done():
            self.done.set_result(None)

    async def failed(self, _event):
        print("AUTH FAILED", flush=True)
        self.disconnect()
        self.finish()

    async def gone(self, _event):
        self.finish()

    async def start(self, _event):
        try:
            print("MECH", self["feature_mechanisms"].mech.name, flush=True)
            await self.get_roster(timeout=10)
            for item in self.client_roster:
                if item != self.boundjid.bare:
                    print("ROSTER", item, self.client_roster[item]["name"], flush=True)
            items = await self["xep_0030"].get_items(jid=component, timeout=10)
            spaces = items["disco_items"]["items"]
            for item_jid, _node, name in spaces:
                print("ITEM", item_jid, name, flush=True)
            for item_jid, _node, _name in spaces:
                iq = self.make_iq_get(queryxmlns="urn:confero:xmpp:join", ito=item_jid)
                answer = await iq.send(timeout=10)
                space = answer.xml.find("{urn:confero:xmpp:join}space")
                print("JOIN", space.get("callId"), space.get("uri"), space.get("webLink"), flush=True)
        finally:
            self.disconnect()
            self.finish()


client = Client()
client.connect((host, int(port)))
try:
    client.loop.run_until_complete(asyncio.wait_for(client.done, 30))
except asyncio.TimeoutError:
    print("TIMEOUT", flush=True)
    sys.exit(2)
