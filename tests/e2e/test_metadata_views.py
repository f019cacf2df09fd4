"""Metadata-only views (client-go's metadata client asks for them in Accept)
and the DeleteOptions rules, through the official Python client's raw calls."""

import json

import pytest
from kubernetes.client.rest import ApiException

META_GET = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json")
META_LIST = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
             "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")


def raw(api_client, method, path, accept="application/json", query=None, body=None):
    """(status, parsed body or text) of one request; errors come back too."""
    try:
        r = api_client.call_api(*api_client.param_serialize(
            method=method, resource_path=path, query_params=query or [],
            header_params={"Accept": accept, "Content-Type": "application/json"},
            body=body, auth_settings=["BearerToken"]))
        r.read()
        text = r.data.decode() if isinstance(r.data, bytes) else r.data
        status = r.status
    except ApiException as e:
        text, status = e.body, e.status
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def test_metadata_views_of_get_list_and_watch(api_client, core, namespace):
    for i in range(2):
        core.create_namespaced_config_map(namespace, {
            "metadata": {"name": f"cm{i}", "labels": {"app": "meta"}, "annotations": {"a": str(i)}},
            "data": {"secret-ish": "x" * 100}})
    base = f"/api/v1/namespaces/{namespace}/configmaps"

    code, obj = raw(api_client, "GET", f"{base}/cm0", META_GET)
    assert code == 200, obj
    assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["labels"] == {"app": "meta"}
    assert obj["metadata"]["managedFields"], "metadata is whole, managedFields included"
    assert "data" not in obj

    code, lst = raw(api_client, "GET", base, META_LIST, query=[("labelSelector", "app=meta")])
    assert code == 200, lst
    assert lst["kind"] == "PartialObjectMetadataList" and lst["apiVersion"] == "meta.k8s.io/v1"
    assert int(lst["metadata"]["resourceVersion"]) > 0
    assert [i["metadata"]["name"] for i in lst["items"]] == ["cm0", "cm1"]
    assert all(i["kind"] == "PartialObjectMetadata" and "data" not in i for i in lst["items"])

    # The wrong shape for the endpoint is 406, as upstream.
    code, st = raw(api_client, "GET", base, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
    assert code == 406 and st["reason"] == "NotAcceptable", st
    assert st["message"] == "you requested PartialObjectMetadata, but the requested object is a list (*v1.ConfigMapList)"
    code, st = raw(api_client, "GET", f"{base}/cm0", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert code == 406 and "is not a list (*v1.ConfigMap)" in st["message"], st

    # A watch sends each event's object as PartialObjectMetadata.
    code, text = raw(api_client, "GET", base, META_GET,
                     query=[("watch", "true"), ("timeoutSeconds", "1"), ("resourceVersion", "0"),
                            # Not the kube-root-ca.crt every namespace has.
                            ("labelSelector", "app=meta")])
    assert code == 200
    events = [json.loads(line) for line in text.splitlines() if line.strip()] if isinstance(text, str) else [text]
    assert {e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"} == {"cm0", "cm1"}
    assert all(e["object"]["kind"] == "PartialObjectMetadata" for e in events)


def test_delete_options_rules_and_codes(api_client, core, namespace):
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for name in ("both", "fg", "cascade"):
        core.create_namespaced_config_map(namespace, {
            "metadata": {"name": name, "finalizers": ["example.com/hold"]}})

    code, st = raw(api_client, "DELETE", f"{base}/both",
                   body={"orphanDependents": True, "propagationPolicy": "Foreground"})
    assert code == 422 and st["reason"] == "Invalid", st
    assert st["message"] == ('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: '
                             '"Foreground": orphanDependents and deletionPropagation cannot be both set')
    assert core.read_namespaced_config_map("both", namespace).metadata.deletion_timestamp is None

    code, st = raw(api_client, "DELETE", f"{base}/x", body={"propagationPolicy": "Sideways"})
    assert code == 422 and 'Unsupported value: "Sideways"' in st["message"], st

    # An object a finalizer keeps: 200 with a Foreground policy, 202 only
    # for the deprecated orphanDependents=false, as upstream answers.
    code, obj = raw(api_client, "DELETE", f"{base}/fg", body={"propagationPolicy": "Foreground"})
    assert code == 200, obj
    assert obj["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in obj["metadata"]["finalizers"]
    code, obj = raw(api_client, "DELETE", f"{base}/cascade", body={"orphanDependents": False})
    assert code == 202, obj

    for name in ("both", "fg", "cascade"):
        core.patch_namespaced_config_map(name, namespace, {"metadata": {"finalizers": None}})
    core.delete_namespaced_config_map("both", namespace)
