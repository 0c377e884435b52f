"""The Salesforce sandbox's login endpoints, answering as Salesforce does.

* ``POST /services/Soap/u/{version}``: SOAP ``login`` (username, password + security
  token): 200 with ``<sessionId>`` and ``<serverUrl>``, or 500 with an ``INVALID_LOGIN`` fault.
* ``POST /services/oauth2/token``: the ``password``, JWT bearer
  (``urn:ietf:params:oauth:grant-type:jwt-bearer``) and ``client_credentials`` grants:
  200 ``{access_token, instance_url, …}``, or 400 ``{error, error_description}``.

Each successful login issues a new access token that the data API then accepts.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any

import jwt

SOAP_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
    'envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
    "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security "
    "token; or user locked out.</faultstring><detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN"
    "</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out."
    "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)
SOAP_OK = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
    'envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
    "<metadataServerUrl>{base}/services/Soap/m/{version}/00D000000000001</metadataServerUrl>"
    "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
    "<serverUrl>{base}/services/Soap/u/{version}/00D000000000001</serverUrl>"
    "<sessionId>{token}</sessionId><userId>005000000000001AAA</userId></result></loginResponse>"
    "</soapenv:Body></soapenv:Envelope>"
)


@dataclass
class Credentials:
    """What the sandbox org accepts at login (None: that way of logging in is refused)."""

    username: str | None = "crmsync@example.com"
    password: str | None = "sandbox-password"
    security_token: str = "SANDBOXTOKEN"
    consumer_key: str | None = "sandbox-consumer-key"
    consumer_secret: str | None = "sandbox-consumer-secret"
    jwt_public_key: str | None = None  # PEM; when set, JWT assertions must be signed by its private key


def new_token() -> str:
    return f"00D000000000001!{secrets.token_urlsafe(24)}"


def _xml_value(body: str, name: str) -> str | None:
    match = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", body, re.DOTALL)
    return html.unescape(match[1]) if match else None


def soap_login(creds: Credentials, body: str) -> bool:
    """Whether a SOAP ``login`` envelope carries the right username and password+token."""
    user, password = _xml_value(body, "username"), _xml_value(body, "password")
    return (
        creds.username is not None
        and creds.password is not None
        and user == creds.username
        and password == creds.password + creds.security_token
    )


def oauth_login(creds: Credentials, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
    """``(200, {})`` when the grant is accepted, else ``(400, {error, error_description})``."""
    grant = form.get("grant_type", "")
    refused = (400, {"error": "invalid_grant", "error_description": "authentication failure"})
    bad_client = (400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
    if grant == "password":
        if form.get("client_id") != creds.consumer_key or form.get("client_secret") != creds.consumer_secret:
            return bad_client
        expected = None if creds.password is None else creds.password + creds.security_token
        ok = creds.username is not None and form.get("username") == creds.username
        return (200, {}) if ok and expected is not None and form.get("password") == expected else refused
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        try:
            if creds.jwt_public_key:
                claims = jwt.decode(
                    form.get("assertion", ""), creds.jwt_public_key, algorithms=["RS256"], options={"verify_aud": False}
                )
            else:
                claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
        except jwt.PyJWTError:
            return refused
        if claims.get("iss") != creds.consumer_key:
            return bad_client
        return (200, {}) if claims.get("sub") == creds.username else refused
    if grant == "client_credentials":
        key, secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                return bad_client
        if key != creds.consumer_key:
            return bad_client
        return (200, {}) if secret == creds.consumer_secret else refused
    return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
