"""SigV2 against the published vectors A-D and the derived Orders vectors (reference/mws_protocol.md §5.3)."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from orders_pipeline.sources.mws.signing import (
    canonical_query,
    format_timestamp,
    host_header,
    percent_encode,
    sign,
    signed_params,
    string_to_sign,
)

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _pairs(query: str) -> dict[str, str]:
    """Decode a canonical query back to params (test helper; values here contain no '&' or '=')."""
    from urllib.parse import unquote

    out = {}
    for pair in query.split("&"):
        k, v = pair.split("=", 1)
        out[unquote(k)] = unquote(v)
    return out


def test_vector_a_mws_submitfeed():
    params = {
        "AWSAccessKeyId": "0PExampleR2",
        "Action": "SubmitFeed",
        "FeedType": "_POST_INVENTORY_AVAILABILITY_DATA_",
        "Marketplace": "ATExampleER",
        "Merchant": "A1ExampleE6",
        "SignatureMethod": "HmacSHA256",
        "SignatureVersion": "2",
        "Timestamp": "2009-08-20T01:10:27.607Z",
        "Version": "2009-01-01",
        "MarketplaceId": "ATVPDKIKX0DER",
    }
    sts = string_to_sign("POST", "mws.amazonservices.com", "/", params)
    assert sts == (
        "POST\nmws.amazonservices.com\n/\n"
        "AWSAccessKeyId=0PExampleR2&Action=SubmitFeed&FeedType=_POST_INVENTORY_AVAILABILITY_DATA_"
        "&Marketplace=ATExampleER&MarketplaceId=ATVPDKIKX0DER&Merchant=A1ExampleE6"
        "&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2009-08-20T01%3A10%3A27.607Z"
        "&Version=2009-01-01"
    )
    signature = sign("sekrets", sts)
    assert signature == "Zde8skcLEYlpbj27jSdTVGZ/WNcs4gDLXMdcQ8cvOrY="
    assert quote(signature, safe="") == "Zde8skcLEYlpbj27jSdTVGZ%2FWNcs4gDLXMdcQ8cvOrY%3D"


_B_PARAMS = {
    "AWSAccessKeyId": "AKIAIOSFODNN7EXAMPLE",
    "Action": "DescribeJobFlows",
    "SignatureMethod": "HmacSHA256",
    "SignatureVersion": "2",
    "Timestamp": "2011-10-03T15:19:30",
    "Version": "2009-03-31",
}


def test_vector_b_aws_get():
    sts = string_to_sign("GET", "elasticmapreduce.amazonaws.com", "/", _B_PARAMS)
    assert sts.endswith(
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows&SignatureMethod=HmacSHA256"
        "&SignatureVersion=2&Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31"
    )
    assert sign(AWS_SECRET, sts) == "i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs="


def test_vector_c_aws_post():
    sts = string_to_sign("POST", "elasticmapreduce.amazonaws.com", "/", _B_PARAMS)
    assert sign(AWS_SECRET, sts) == "wseguMzBRgA/4/fan8ZwEa0PIF+ws4WFbTJcG1ts5RY="


def test_vector_d_non_root_path_and_comma():
    params = {
        "Service": "AWSECommerceService",
        "AWSAccessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "AssociateTag": "mytag-20",
        "Operation": "ItemLookup",
        "ItemId": "0679722769",
        "ResponseGroup": "Images,ItemAttributes,Offers,Reviews",
        "Version": "2013-08-01",
        "Timestamp": "2014-08-18T12:00:00Z",
    }
    assert canonical_query(params) == (
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&AssociateTag=mytag-20&ItemId=0679722769&Operation=ItemLookup"
        "&ResponseGroup=Images%2CItemAttributes%2COffers%2CReviews&Service=AWSECommerceService"
        "&Timestamp=2014-08-18T12%3A00%3A00Z&Version=2013-08-01"
    )
    sts = string_to_sign("GET", "webservices.amazon.com", "/onca/xml", params)
    assert sign("1234567890", sts) == "j7bZM0LXZ9eXeZruTqWm2DIvDYVUU3wxPPpp+iXxzQc="


_ORDERS_VECTORS = [
    (
        "AWSAccessKeyId=0PB842EXAMPLE7N4ZTR2&Action=ListOrderItems&AmazonOrderId=058-1233752-8214740"
        "&MWSAuthToken=amzn.mws.4ea38b7b-f563-7709-4bae-87aeaEXAMPLE&SellerId=A1XEXAMPLE5E6"
        "&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2013-09-05T18%3A12%3A21.687Z&Version=2013-09-01",
        "+2p6NzlC/P8DiZWvYuGuWRGF11WxizKaF2qNrVjhmgY=",
    ),
    (
        "AWSAccessKeyId=0PB842EXAMPLE7N4ZTR2&Action=ListOrders&LastUpdatedAfter=2017-02-01T18%3A12%3A21Z"
        "&MWSAuthToken=amzn.mws.4ea38b7b-f563-7709-4bae-87aeaEXAMPLE&MarketplaceId.Id.1=ATVPDKIKX0DER"
        "&MaxResultsPerPage=100&OrderStatus.Status.1=Unshipped&OrderStatus.Status.2=PartiallyShipped"
        "&SellerId=A2NEXAMPLETF53&SignatureMethod=HmacSHA256&SignatureVersion=2"
        "&Timestamp=2017-02-05T18%3A12%3A21.687Z&Version=2013-09-01",
        "Bd1xZplk0/3WQHHlVb+EJrW968fRcUYKVXB/7Ir/Wx4=",
    ),
    (
        "AWSAccessKeyId=0PB842EXAMPLE7N4ZTR2&Action=ListOrderItemsByNextToken"
        "&MWSAuthToken=amzn.mws.4ea38b7b-f563-7709-4bae-87aeaEXAMPLE&NextToken=MRgZW55IGNhcm5h%2BbCBwbGVhc3%2FVyZS6%3D"
        "&SellerId=A1XEXAMPLE5E6&SignatureMethod=HmacSHA256&SignatureVersion=2"
        "&Timestamp=2013-09-05T18%3A12%3A21.687Z&Version=2013-09-01",
        "c3pgH5qE91H88vIYbzxYxS7ZbycjpcAXxMMQ4Zrda4A=",
    ),
]


@pytest.mark.parametrize(("canonical", "expected"), _ORDERS_VECTORS)
def test_derived_orders_vectors(canonical, expected):
    params = _pairs(canonical)
    # shuffle insertion order: the canonical form must not depend on it
    shuffled = dict(reversed(list(params.items())))
    assert canonical_query(shuffled) == canonical
    sts = string_to_sign("POST", "mws.amazonservices.com", "/Orders/2013-09-01", shuffled)
    assert sts == f"POST\nmws.amazonservices.com\n/Orders/2013-09-01\n{canonical}"
    assert sign(AWS_SECRET, sts) == expected


def test_signed_params_reproduces_orders_vector():
    out = signed_params(
        {"Action": "ListOrderItemsByNextToken", "NextToken": "MRgZW55IGNhcm5h+bCBwbGVhc3/VyZS6="},
        access_key_id="0PB842EXAMPLE7N4ZTR2",
        secret_key=AWS_SECRET,
        seller_id="A1XEXAMPLE5E6",
        auth_token="amzn.mws.4ea38b7b-f563-7709-4bae-87aeaEXAMPLE",
        version="2013-09-01",
        method="POST",
        host="MWS.amazonservices.com",
        path="/Orders/2013-09-01",
        timestamp=datetime(2013, 9, 5, 18, 12, 21, 687000, tzinfo=timezone.utc),
    )
    assert out["Timestamp"] == "2013-09-05T18:12:21.687Z"
    assert out["Signature"] == "c3pgH5qE91H88vIYbzxYxS7ZbycjpcAXxMMQ4Zrda4A="
    assert out["SignatureMethod"] == "HmacSHA256" and out["SignatureVersion"] == "2"


def test_signed_params_without_auth_token_omits_it():
    out = signed_params(
        {"Action": "GetServiceStatus"},
        access_key_id="AK",
        secret_key="s",
        seller_id="S",
        auth_token=None,
        version="2013-09-01",
        method="POST",
        host="h",
        path="/Orders/2013-09-01",
    )
    assert "MWSAuthToken" not in out
    # the signature covers everything but itself
    assert out["Signature"] == sign("s", string_to_sign("POST", "h", "/Orders/2013-09-01", out))


def test_byte_order_sort_mwsauthtoken_before_marketplaceid():
    q = canonical_query({"MarketplaceId.Id.1": "X", "MWSAuthToken": "t", "Merchant": "m", "Marketplace": "y"})
    assert q == "MWSAuthToken=t&Marketplace=y&MarketplaceId.Id.1=X&Merchant=m"
    # natural byte order, not "natural" numeric order: Id.10 sorts before Id.2
    q = canonical_query({f"MarketplaceId.Id.{i}": str(i) for i in (1, 2, 10)})
    assert q == "MarketplaceId.Id.1=1&MarketplaceId.Id.10=10&MarketplaceId.Id.2=2"


def test_space_is_percent20_and_specials_encoded():
    assert percent_encode("a b") == "a%20b"
    assert percent_encode("a+b/c=d") == "a%2Bb%2Fc%3Dd"
    assert percent_encode("-_.~") == "-_.~"
    assert percent_encode("é") == "%C3%A9"
    assert percent_encode("*") == "%2A"
    assert canonical_query({"K": "", "Signature": "zzz"}) == "K="


def test_host_header_rules():
    assert host_header("https://MWS.AmazonServices.com") == "mws.amazonservices.com"
    assert host_header("https://mws.amazonservices.com:443") == "mws.amazonservices.com"
    assert host_header("http://127.0.0.1:80") == "127.0.0.1"
    assert host_header("http://127.0.0.1:8123") == "127.0.0.1:8123"
    assert host_header("https://mws.amazonservices.com:8443/x") == "mws.amazonservices.com:8443"
    assert host_header("http://[::1]:8123") == "[::1]:8123"


def test_timestamp_format_ms_z():
    assert format_timestamp(datetime(2020, 1, 2, 3, 4, 5, 999999, tzinfo=timezone.utc)) == "2020-01-02T03:04:05.999Z"
    assert format_timestamp(datetime(2020, 1, 2, 3, 4, 5)) == "2020-01-02T03:04:05.000Z"
