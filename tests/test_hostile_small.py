"""Small ones (issue 8, item 10): exactly 10 redirects are followed (as reqwest, which Arroyo
uses), the 11th fails; a ``{{KEY}}`` without spaces in an endpoint is caught by validation
instead of being sent literally on every poll. Real httpbin (pytest-httpbin) on 127.0.0.1.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)


async def poll_once(endpoint: str) -> RunningSource:
    async with RunningSource(polling_table(endpoint)) as src:
        await src.sleeping_after(1)
    return src


async def test_a_chain_of_exactly_ten_redirects_is_followed(httpbin: Any) -> None:
    src = await poll_once(httpbin.url + "/redirect/10")
    assert src.status.failures == 0, src.status.last_error
    assert json.loads(src.rows()[0]["value"])["url"].endswith("/get")


async def test_the_eleventh_redirect_fails(httpbin: Any) -> None:
    src = await poll_once(httpbin.url + "/redirect/11")
    assert src.status.last_error == "HTTP request failed: too many redirects (more than 10)"


@pytest.mark.parametrize("var", ["{{KEY}}", "{{ KEY }}", "{{KEY }}"])
def test_a_variable_in_the_endpoint_is_a_validation_error(var: str) -> None:
    prefix = "CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', endpoint = '"
    sql = prefix + f"http://127.0.0.1:9/items?key={var}', format = 'raw_string');"
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, env={"KEY": "k"})
    [error] = info.value.errors
    assert error.message.startswith("invalid endpoint 'http://127.0.0.1:9/items?key=")
    assert error.position is not None and error.position.col == len(prefix)
    assert error.hint == (
        "{{ VAR }} is not substituted in the endpoint (as in Arroyo: a URL ends up in logs); "
        "put the secret in headers, a 'query.<name>' option or an 'auth.*' option"
    )
