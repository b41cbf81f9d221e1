"""Calls to the configured OAuth provider: code exchange and user info."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from balsam.server.conf import OAuthSettings


class ProviderError(Exception):
    pass


def authorize_url(oauth: OAuthSettings, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": oauth.client_id,
            "redirect_uri": redirect_uri,
            "scope": oauth.scope,
            "state": state,
        }
    )
    return f"{oauth.request_uri}?{query}"


def fetch_username(oauth: OAuthSettings, code: str, redirect_uri: str) -> str:
    """Exchange the authorization code for a provider token, then read the username from user-info."""
    secret = oauth.client_secret.get_secret_value() if oauth.client_secret else ""
    try:
        with httpx.Client(timeout=oauth.http_timeout) as client:
            token_resp = client.post(
                oauth.token_uri,
                data={
                    "client_id": oauth.client_id,
                    "client_secret": secret,
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "grant_type": "authorization_code",
                },
                headers={"Accept": "application/json"},
            )
            token_resp.raise_for_status()
            access_token = token_resp.json()["access_token"]
            info = client.get(oauth.user_info_uri, headers={"Authorization": f"Bearer {access_token}"})
            info.raise_for_status()
            username = info.json()["username"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        raise ProviderError(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(username, str) or not username or "\x00" in username or len(username) > 256:
        raise ProviderError("provider returned an unusable username")
    return username
