from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.evaluate_body import EvaluateBody
from ...models.evaluate_response import EvaluateResponse
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    body: EvaluateBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(inference_header_content_length, Unset):
        headers["Inference-Header-Content-Length"] = str(inference_header_content_length)

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/evaluate",
    }

    if isinstance(body, EvaluateBody):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | EvaluateResponse | None:
    if response.status_code == 200:
        response_200 = EvaluateResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorBody.from_dict(response.json())

        return response_400

    if response.status_code == 413:
        response_413 = ErrorBody.from_dict(response.json())

        return response_413

    if response.status_code == 504:
        response_504 = ErrorBody.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorBody | EvaluateResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: EvaluateBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> Response[ErrorBody | EvaluateResponse]:
    """Mean loss, confusion counts, per-class and macro/micro F1

    Args:
        inference_header_content_length (int | Unset):
        body (EvaluateBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | EvaluateResponse]
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
    body: EvaluateBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> ErrorBody | EvaluateResponse | None:
    """Mean loss, confusion counts, per-class and macro/micro F1

    Args:
        inference_header_content_length (int | Unset):
        body (EvaluateBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | EvaluateResponse
    """

    return sync_detailed(
        client=client,
        body=body,
        inference_header_content_length=inference_header_content_length,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: EvaluateBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> Response[ErrorBody | EvaluateResponse]:
    """Mean loss, confusion counts, per-class and macro/micro F1

    Args:
        inference_header_content_length (int | Unset):
        body (EvaluateBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | EvaluateResponse]
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
    body: EvaluateBody | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> ErrorBody | EvaluateResponse | None:
    """Mean loss, confusion counts, per-class and macro/micro F1

    Args:
        inference_header_content_length (int | Unset):
        body (EvaluateBody):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | EvaluateResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            inference_header_content_length=inference_header_content_length,
        )
    ).parsed
