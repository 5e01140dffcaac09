"""paramconv: the spec-key conversion must give exactly the Go operator's variable names."""

import pytest

from testbed.runner.paramconv import map_to_snake, to_snake

# The operator's own test table (internal/ansible/paramconv/paramconv_test.go, v1.42.3).
GO_TEST_TABLE = [
    ("var", "var"),
    ("888", "888"),
    ("k8s_var", "k8s_var"),
    ("_k8s_var", "_k8s_var"),
    ("k8s var", "k8s_var"),
    ("ThisShouldHaveUnderscores", "_this_should_have_underscores"),
    ("sizeK8sBuckets", "size_k8s_buckets"),
    ("_CanYou_Handle_mixedVars", "_can_you_handle_mixed_vars"),
    ("this_should_be_a_noop", "this_should_be_a_noop"),
    ("egressIPs", "egress_ips"),
    ("egressIPsEgress", "egress_ips_egress"),
    ("egressIPsegress", "egress_ips_egress"),
    ("IPsegress", "_ips_egress"),
    ("egressIP", "egress_ip"),
    ("egressIPEgress", "egress_ip_egress"),
    ("egressIPegress", "egress_ip_egress"),
    ("URLegressIPEgressHTTP", "url_egress_ip_egress_http"),
    ("URLsegressIPsEgressHTTPs", "_urls_egress_ips_egress_https"),
]

# Outputs of ToSnake compiled from paramconv.go at v1.42.3, for inputs chosen to hit its quirks:
# a special word alone gets two underscores, acronyms split before their last capital, a digit
# run between letters and another letter+digits is split off, non-ASCII letters are kept.
GO_OUTPUTS = [
    ("  spaced key ", "spaced_key"),
    ("-", "_"),
    ("A", "_a"),
    ("ABC", "_abc"),
    ("ABCdef", "_ab_cdef"),
    ("ClusterIP", "_cluster_ip"),
    ("HTTP", "__http"),
    ("HTTPIP", "http__ip"),
    ("HTTPServer", "http_server"),
    ("HTTPsIP", "_https__ip"),
    ("IP", "__ip"),
    ("IPAddress", "ip_address"),
    ("IPIP", "ip_ip"),
    ("Ip", "ip"),
    ("JSONData", "_json_data"),
    ("MySQLVersion", "_my_sql_version"),
    ("S3", "_s3"),
    ("Straße", "_straße"),
    ("UPPER_CASE", "_upper_case"),
    ("URL", "__url"),
    ("URLs", "__urls"),
    ("Upper_Case", "_upper_case"),
    ("XMLHttpRequest", "_xml_http_request"),
    ("_", "_"),
    ("__double", "__double"),
    ("a1b2", "a_1_b2"),
    ("aBC", "abc"),
    ("abc123def456", "abc123def456"),
    ("backupS3Bucket", "backup_s3_bucket"),
    ("caféBar", "café_bar"),
    ("clusterIPs", "cluster_ips"),
    ("engine.image", "engine.image"),
    ("getHTTPResponseCode", "get_http_response_code"),
    ("hostIP", "host_ip"),
    ("httpServer", "http_server"),
    ("ipAddress", "ip_address"),
    ("ipsum", "ipsum"),
    ("kebab-case-key", "kebab_case_key"),
    ("key1Value2", "key1_value2"),
    ("loadBalancerIP", "load_balancer_ip"),
    ("myURLs", "my_urls"),
    ("podIPs", "pod_ips"),
    ("rootPasswordSecretRef", "root_password_secret_ref"),
    ("serverURL", "server_url"),
    ("serverUrl", "server_url"),
    ("snake_Case", "snake_case"),
    ("storageClassName", "storage_class_name"),
    ("trailing_", "trailing_"),
    ("v1alpha1", "v1alpha1"),
    ("x-y-z", "x_y_z"),
    ("x1y2z3", "x_1_y2z3"),
    ("ßIP", "ß_ip"),
]


@pytest.mark.parametrize(("key", "expected"), GO_TEST_TABLE + GO_OUTPUTS)
def test_to_snake_matches_go(key, expected):
    assert to_snake(key) == expected


@pytest.mark.parametrize("key", ["", " ", "   "])
def test_blank_key_is_an_error_not_a_name(key):
    with pytest.raises(ValueError, match="empty or blank"):
        to_snake(key)


def test_map_to_snake_converts_nested_dicts_and_dicts_in_lists_only():
    spec = {
        "storageClassName": "fast",
        "nested": {"innerKey": {"deepKey": 1}, "listOfDicts": [{"someKey": "a"}, "plainValue", ["inList"]]},
        "egressIPs": ["1.2.3.4"],
        "labelsMap": {"app.kubernetes.io/name": "keepValueCase"},
    }
    assert map_to_snake(spec) == {
        "storage_class_name": "fast",
        "nested": {
            "inner_key": {"deep_key": 1},
            "list_of_dicts": [{"some_key": "a"}, "plainValue", ["inList"]],
        },
        "egress_ips": ["1.2.3.4"],
        "labels_map": {"app.kubernetes.io/name": "keepValueCase"},
    }


def test_map_to_snake_keeps_the_go_tests_map_unchanged():
    # TestMapToSnake in paramconv_test.go.
    already = {"var": "value", "var_var": "value", "size_k8s_test": "value", "888": "value"}
    assert map_to_snake(already) == already
