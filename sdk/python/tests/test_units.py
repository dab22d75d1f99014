"""Unit tests of the pieces that need no host: python3 -m unittest discover -s tests."""

import base64
import datetime
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import grpc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

from agenthost_sdk import (  # noqa: E402
    Action, Content, DeadlineExceededError, Logger, NotFoundError, Plugin, Provider, Route, Setting, negotiate_version,
)
from agenthost_sdk import _convert as cv  # noqa: E402
from agenthost_sdk._errors import code_of, error_from_rpc  # noqa: E402
from agenthost_sdk._log import hclog_timestamp  # noqa: E402
from agenthost_sdk._mtls import server_certificate  # noqa: E402
from agenthost_sdk._server import validate_plugin  # noqa: E402


class _RpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


class Units(unittest.TestCase):
    def test_version_is_the_highest_both_speak_else_our_lowest(self):
        self.assertEqual(negotiate_version("1,2", (1,)), 1)
        self.assertEqual(negotiate_version(" 2 , 1 ", (1, 2)), 2)
        self.assertEqual(negotiate_version("3", (1, 2)), 1)
        self.assertEqual(negotiate_version(None, (1,)), 1)

    def test_log_lines_are_hclog_json(self):
        lines = []
        log = Logger("unit", "debug", lines.append).bind(agent_id="a1")
        try:
            raise ValueError("boom")
        except ValueError as err:
            log.info("hello", n=1, error=err, **{"@level": "bogus"})
        log.trace("dropped")
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].endswith("\n"))
        e = json.loads(lines[0])
        self.assertEqual((e["@level"], e["@message"], e["@module"], e["agent_id"], e["n"]), ("info", "hello", "unit", "a1", 1))
        self.assertIn("ValueError: boom", e["error"])
        self.assertRegex(e["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        t = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
        self.assertEqual(hclog_timestamp(t), "2026-01-02T03:04:05.678000Z")

    def test_content_keeps_its_extra_keys(self):
        pb = cv.content_to_proto(Content(text="hi", actions=["WAVE"], in_reply_to="m1", extra={"mood": "happy", "n": [1, 2]}))
        self.assertEqual(json.loads(pb.extra_json), {"mood": "happy", "n": [1, 2]})
        back = cv.content_from_proto(pb)
        self.assertEqual((back.text, back.actions, back.in_reply_to, back.extra), ("hi", ["WAVE"], "m1", {"mood": "happy", "n": [1, 2]}))
        self.assertEqual(cv.content_to_proto("plain").text, "plain")

    def test_bad_json_is_reported_and_read_as_empty(self):
        bad = []
        cv.on_bad_json(lambda field, err: bad.append(field))
        try:
            self.assertEqual(cv.decode_object(b"{nope", "state.values_json"), {})
            self.assertEqual(cv.decode_object(b"[1]", "memory.metadata_json"), {})
            self.assertEqual(cv.decode_object(b'{"a":1}', "x"), {"a": 1})
        finally:
            cv.on_bad_json(lambda field, err: None)
        self.assertEqual(bad, ["state.values_json", "memory.metadata_json"])

    def test_optional_model_fields_stay_unset(self):
        from agenthost_sdk import ModelRequest
        pb = cv.model_request_to_proto("a1", ModelRequest(type="TEXT_SMALL", prompt="p"))
        self.assertFalse(pb.HasField("temperature"))
        pb = cv.model_request_to_proto("a1", ModelRequest(type="TEXT_SMALL", temperature=0.0))
        self.assertTrue(pb.HasField("temperature"))
        self.assertEqual(cv.model_request_from_proto(pb).temperature, 0.0)

    def test_definition_mistakes_are_caught_at_start(self):
        get = lambda *_: ""  # noqa: E731
        with self.assertRaisesRegex(ValueError, "name is empty"):
            validate_plugin(Plugin(name=""))
        with self.assertRaisesRegex(ValueError, "provider A is defined twice"):
            validate_plugin(Plugin(name="p", providers=[Provider("A", get), Provider("A", get)]))
        with self.assertRaisesRegex(ValueError, "action X has no handler"):
            validate_plugin(Plugin(name="p", actions=[Action("X", None)]))
        with self.assertRaisesRegex(ValueError, "required and has a default"):
            validate_plugin(Plugin(name="p", settings=[Setting("K", required=True, default="x")]))
        with self.assertRaisesRegex(ValueError, 'starting with "/"'):
            validate_plugin(Plugin(name="p", routes=[Route("hook", get)]))
        validate_plugin(Plugin(name="p", providers=[Provider("A", get)]))

    def test_errors_keep_their_kind(self):
        e = error_from_rpc("runtime GetRoom", _RpcError(grpc.StatusCode.NOT_FOUND, "no such room"))
        self.assertIsInstance(e, NotFoundError)
        self.assertEqual(str(e), "runtime GetRoom: no such room")
        self.assertIsInstance(error_from_rpc("x", _RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "")), DeadlineExceededError)
        self.assertEqual(code_of(NotFoundError("x")), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(code_of(ValueError("x")), grpc.StatusCode.INTERNAL)

    def test_the_automtls_certificate(self):
        _, cert_pem, field = server_certificate()
        cert = x509.load_pem_x509_certificate(cert_pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["localhost"])
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, list(eku))
        self.assertLess(cert.not_valid_before, datetime.datetime.utcnow())
        self.assertFalse(field.endswith("="))
        der = base64.b64decode(field + "=" * (-len(field) % 4))
        self.assertEqual(x509.load_der_x509_certificate(der), cert)


if __name__ == "__main__":
    unittest.main()
