from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.loss_request_body import LossRequestBody
from ...models.loss_response_body import LossResponseBody
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    body: LossRequestBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(inference_header_content_length, Unset):
        headers["Inference-Header-Content-Length"] = str(inference_header_content_length)

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/loss",
    }

    if isinstance(body, LossRequestBody):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | LossResponseBody | None:
    if response.status_code == 200:
        response_200 = LossResponseBody.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorBody.from_dict(response.json())

        return response_400

    if response.status_code == 413:
        response_413 = ErrorBody.from_dict(response.json())

        return response_413

    if response.status_code == 429:
        response_429 = ErrorBody.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = ErrorBody.from_dict(response.json())

        return response_503

    if response.status_code == 504:
        response_504 = ErrorBody.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorBody | LossResponseBody]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: LossRequestBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> Response[ErrorBody | LossResponseBody]:
    """Value, gradient and Hessian diagonal of a registry loss

    Args:
        inference_header_content_length (int | Unset):
        body (LossRequestBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LossResponseBody]
    """

    kwargs = _get_kwargs(
        body=body,
        inference_header_content_length=inference_header_content_length,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: LossRequestBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> ErrorBody | LossResponseBody | None:
    """Value, gradient and Hessian diagonal of a registry loss

    Args:
        inference_header_content_length (int | Unset):
        body (LossRequestBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LossResponseBody
    """

    return sync_detailed(
        client=client,
        body=body,
        inference_header_content_length=inference_header_content_length,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: LossRequestBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> Response[ErrorBody | LossResponseBody]:
    """Value, gradient and Hessian diagonal of a registry loss

    Args:
        inference_header_content_length (int | Unset):
        body (LossRequestBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LossResponseBody]
    """

    kwargs = _get_kwargs(
        body=body,
        inference_header_content_length=inference_header_content_length,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: LossRequestBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> ErrorBody | LossResponseBody | None:
    """Value, gradient and Hessian diagonal of a registry loss

    Args:
        inference_header_content_length (int | Unset):
        body (LossRequestBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LossResponseBody
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            inference_header_content_length=inference_header_content_length,
        )
    ).parsed
