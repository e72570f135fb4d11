"""AuthService: reads the request, calls one use case, converts the result."""

from __future__ import annotations

from grpc import aio

from pixelcheck.api import convert
from pixelcheck.api.calls import current_peer, current_principal, current_request_id
from pixelcheck.api.client_address import FORWARDED_FOR_KEY, ClientAddresses
from pixelcheck.bootstrap import Container
from pixelcheck.iam.service import Origin
from pixelcheck.offload import Offloader
from pixelcheck.v1 import auth_pb2, auth_pb2_grpc

TOKEN_TYPE = "Bearer"


def _origin(context: aio.ServicerContext | None = None, addresses: ClientAddresses | None = None) -> Origin:
    """Where the call came from; with context and addresses, also the client address (for SignIn)."""
    peer = current_peer()
    if context is None or addresses is None:
        return Origin(request_id=current_request_id(), peer=peer)
    forwarded = [v if isinstance(v, str) else v.decode("latin-1")
                 for k, v in context.invocation_metadata() or () if k == FORWARDED_FOR_KEY]
    return Origin(request_id=current_request_id(), peer=peer, client_address=addresses.resolve(peer, forwarded))


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, container: Container, offload: Offloader) -> None:
        self._c = container
        self._run = offload.run

    async def SignUp(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.SignUpRequest, context: aio.ServicerContext
    ) -> auth_pb2.SignUpResponse:
        account = await self._run(self._c.identity.sign_up, username=request.username, email=request.email,
                                  password=request.password, display_name=request.display_name,
                                  origin=_origin())
        return auth_pb2.SignUpResponse(user=convert.user_to_proto(account))

    async def SignIn(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.SignInRequest, context: aio.ServicerContext
    ) -> auth_pb2.SignInResponse:
        signed_in = await self._run(self._c.identity.sign_in, login=request.login, password=request.password,
                                    origin=_origin(context, self._c.client_addresses))
        tokens = signed_in.tokens
        return auth_pb2.SignInResponse(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token, token_type=TOKEN_TYPE,
            expires_in_seconds=tokens.expires_in_seconds, user=convert.user_to_proto(signed_in.account))

    async def RefreshToken(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.RefreshTokenRequest, context: aio.ServicerContext
    ) -> auth_pb2.RefreshTokenResponse:
        tokens = await self._run(self._c.identity.refresh, refresh_token=request.refresh_token,
                                 origin=_origin())
        return auth_pb2.RefreshTokenResponse(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token, token_type=TOKEN_TYPE,
            expires_in_seconds=tokens.expires_in_seconds)

    async def SignOut(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.SignOutRequest, context: aio.ServicerContext
    ) -> auth_pb2.SignOutResponse:
        await self._run(self._c.identity.sign_out, user_id=current_principal().user_id,
                        refresh_token=request.refresh_token, origin=_origin())
        return auth_pb2.SignOutResponse()

    async def GetCurrentUser(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.GetCurrentUserRequest, context: aio.ServicerContext
    ) -> auth_pb2.GetCurrentUserResponse:
        user_id = current_principal().user_id
        # A recently read account is answered on the event loop: no thread hand-off for a memory lookup.
        account = self._c.identity.cached_account(user_id) or await self._run(self._c.identity.get_account, user_id)
        return auth_pb2.GetCurrentUserResponse(user=convert.user_to_proto(account))

    async def SetUserRoles(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.SetUserRolesRequest, context: aio.ServicerContext
    ) -> auth_pb2.SetUserRolesResponse:
        account = await self._run(self._c.identity.set_roles, user_id=request.user_id,
                                  roles=[convert.role_name(r) for r in request.roles],
                                  disabled=request.disabled if request.HasField("disabled") else None,
                                  actor_id=current_principal().user_id, origin=_origin())
        return auth_pb2.SetUserRolesResponse(user=convert.user_to_proto(account))

    async def SignOutEverywhere(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.SignOutEverywhereRequest, context: aio.ServicerContext
    ) -> auth_pb2.SignOutEverywhereResponse:
        await self._run(self._c.identity.sign_out_everywhere, caller=current_principal(),
                        user_id=request.user_id, origin=_origin())
        return auth_pb2.SignOutEverywhereResponse()

    async def ListServiceTokens(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.ListServiceTokensRequest, context: aio.ServicerContext
    ) -> auth_pb2.ListServiceTokensResponse:
        page = await self._run(self._c.service_tokens.list_tokens, size=request.page_size,
                               page_token=request.page_token, service_name=request.service_name)
        return auth_pb2.ListServiceTokensResponse(
            service_tokens=[convert.service_token_to_proto(t) for t in page.tokens],
            next_page_token=page.next_page_token)

    async def RevokeServiceToken(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.RevokeServiceTokenRequest, context: aio.ServicerContext
    ) -> auth_pb2.RevokeServiceTokenResponse:
        caller = current_principal().user_id
        token = await self._run(self._c.service_tokens.revoke, token_id=request.id, revoked_by=f"user:{caller}",
                                actor_id=caller, origin=_origin())
        return auth_pb2.RevokeServiceTokenResponse(service_token=convert.service_token_to_proto(token))
