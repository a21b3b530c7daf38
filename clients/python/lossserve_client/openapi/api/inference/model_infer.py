from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.inference_request import InferenceRequest
from ...models.inference_response import InferenceResponse
from ...models.oip_error import OIPError
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    model_name: str,
    *,
    body: InferenceRequest | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(inference_header_content_length, Unset):
        headers["Inference-Header-Content-Length"] = str(inference_header_content_length)

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v2/models/{model_name}/infer".format(
            model_name=quote(str(model_name), safe=""),
        ),
    }

    if isinstance(body, InferenceRequest):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> InferenceResponse | OIPError | None:
    if response.status_code == 200:
        response_200 = InferenceResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = OIPError.from_dict(response.json())

        return response_400

    if response.status_code == 404:
        response_404 = OIPError.from_dict(response.json())

        return response_404

    if response.status_code == 413:
        response_413 = OIPError.from_dict(response.json())

        return response_413

    if response.status_code == 429:
        response_429 = OIPError.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = OIPError.from_dict(response.json())

        return response_503

    if response.status_code == 504:
        response_504 = OIPError.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[InferenceResponse | OIPError]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    model_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: InferenceRequest | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> Response[InferenceResponse | OIPError]:
    """Model Infer

    Args:
        model_name (str):
        inference_header_content_length (int | Unset):
        body (InferenceRequest):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[InferenceResponse | OIPError]
    """

    kwargs = _get_kwargs(
        model_name=model_name,
        body=body,
        inference_header_content_length=inference_header_content_length,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    model_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: InferenceRequest | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> InferenceResponse | OIPError | None:
    """Model Infer

    Args:
        model_name (str):
        inference_header_content_length (int | Unset):
        body (InferenceRequest):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        InferenceResponse | OIPError
    """

    return sync_detailed(
        model_name=model_name,
        client=client,
        body=body,
        inference_header_content_length=inference_header_content_length,
    ).parsed


async def asyncio_detailed(
    model_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: InferenceRequest | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> Response[InferenceResponse | OIPError]:
    """Model Infer

    Args:
        model_name (str):
        inference_header_content_length (int | Unset):
        body (InferenceRequest):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[InferenceResponse | OIPError]
    """

    kwargs = _get_kwargs(
        model_name=model_name,
        body=body,
        inference_header_content_length=inference_header_content_length,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    model_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: InferenceRequest | File | Unset = UNSET,
    inference_header_content_length: int | Unset = UNSET,
) -> InferenceResponse | OIPError | None:
    """Model Infer

    Args:
        model_name (str):
        inference_header_content_length (int | Unset):
        body (InferenceRequest):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        InferenceResponse | OIPError
    """

    return (
        await asyncio_detailed(
            model_name=model_name,
            client=client,
            body=body,
            inference_header_content_length=inference_header_content_length,
        )
    ).parsed
