//! The volume manager against a fixed set of objects, on a real temporary
//! directory (tmpfs and bind mounts need root, as the kubelet does).

use super::*;
use serde_json::json;

#[derive(Default)]
struct Map {
    cms: HashMap<String, ConfigMap>,
    secrets: HashMap<String, Secret>,
    token_calls: usize,
}

impl Objects for Map {
    async fn config_map(&mut self, name: &str) -> Result<Option<ConfigMap>, String> {
        Ok(self.cms.get(name).cloned())
    }
    async fn secret(&mut self, name: &str) -> Result<Option<Secret>, String> {
        Ok(self.secrets.get(name).cloned())
    }
    async fn token(&mut self, _: &Pod, audience: &str, exp: i64) -> Result<String, String> {
        self.token_calls += 1;
        Ok(format!("tok-{audience}-{exp}-{}", self.token_calls))
    }
}

fn objects() -> Map {
    let mut m = Map::default();
    m.cms.insert(
        "cfg".into(),
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}}))
            .unwrap(),
    );
    m.cms.insert(
        "kube-root-ca.crt".into(),
        serde_json::from_value(
            json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "PEM"}}),
        )
        .unwrap(),
    );
    m.secrets.insert(
        "sec".into(),
        serde_json::from_value(json!({"metadata": {"name": "sec"}, "data": {"pw": "czNjcmV0"}}))
            .unwrap(),
    );
    m
}

fn pod(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "volumeMounts": mounts}], "volumes": volumes}
    }))
    .unwrap()
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).unwrap()
}

#[tokio::test]
async fn writes_api_volumes_and_fails_like_upstream() {
    let root = tempfile::tempdir().unwrap();
    let m = Manager::new(root.path().join("pods"));
    let p = pod(
        json!([
            {"name": "cm", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "x/a.conf", "mode": 0o600}]}},
            {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {"name": "d", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "kube-api-access-abcde", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
            {"name": "opt", "configMap": {"name": "absent", "optional": true}},
            {"name": "scratch", "emptyDir": {}}
        ]),
        json!([{"name": "cm", "mountPath": "/cm"}, {"name": "scratch", "mountPath": "/s", "subPath": "deep/er"}]),
    );
    let mut objs = objects();
    let v = m.setup(&p, &mut objs, &NodeFacts::default()).await.unwrap();
    assert_eq!(read(&v["cm"].path, "x/a.conf"), "1");
    assert!(v["cm"].read_only && !v["scratch"].read_only);
    assert_eq!(read(&v["s"].path, "pw"), "s3cret");
    assert!(
        local::is_mount_point(&v["s"].path),
        "secrets live on a tmpfs"
    );
    assert_eq!(read(&v["d"].path, "labels"), "app=\"web\"");
    let sa = &v["kube-api-access-abcde"].path;
    assert_eq!(read(sa, "token"), "tok--3607-1");
    assert_eq!(read(sa, "ca.crt"), "PEM");
    assert_eq!(read(sa, "namespace"), "ns");
    assert!(
        v.contains_key("opt"),
        "an optional missing ConfigMap is an empty volume"
    );
    // A resync reuses the token and picks up changed data and labels.
    let mut objs = objects();
    objs.cms
        .get_mut("cfg")
        .unwrap()
        .data
        .as_mut()
        .unwrap()
        .insert("a".into(), "changed".into());
    let mut p2 = p.clone();
    p2.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "front".into());
    m.setup(&p2, &mut objs, &NodeFacts::default())
        .await
        .unwrap();
    assert_eq!(read(&v["cm"].path, "x/a.conf"), "changed");
    assert_eq!(read(&v["d"].path, "labels"), "app=\"web\"\ntier=\"front\"");
    assert_eq!(
        objs.token_calls, 0,
        "the token is reused until 80% of its life"
    );
    // Mounts: read-only API data, and a subPath bound from the volume.
    let c = &p.spec.as_ref().unwrap().containers[0];
    let mounts = container_mounts(m.pods_root(), &p, c, &v, &HashMap::new()).unwrap();
    assert!(mounts[0].readonly);
    assert!(
        mounts[1].host_path.ends_with("volume-subpaths/scratch/c/1"),
        "{}",
        mounts[1].host_path
    );
    std::fs::write(v["scratch"].path.join("deep/er/f"), b"seen").unwrap();
    assert_eq!(read(Path::new(&mounts[1].host_path), "f"), "seen");
    m.teardown("u1");
    assert!(!root.path().join("pods/u1").exists());
    // A missing ConfigMap or key is upstream's FailedMount message.
    let bad = pod(
        json!([{"name": "x", "configMap": {"name": "nope"}}]),
        json!([]),
    );
    assert_eq!(
        m.setup(&bad, &mut objects(), &NodeFacts::default())
            .await
            .unwrap_err(),
        "MountVolume.SetUp failed for volume \"x\" : configmap \"nope\" not found"
    );
    let bad = pod(
        json!([{"name": "x", "secret": {"secretName": "sec", "items": [{"key": "k", "path": "k"}]}}]),
        json!([]),
    );
    assert_eq!(
        m.setup(&bad, &mut objects(), &NodeFacts::default())
            .await
            .unwrap_err(),
        "MountVolume.SetUp failed for volume \"x\" : references non-existent secret key: k"
    );
    m.teardown("u1");
}

#[tokio::test]
async fn subpath_escapes_and_expressions() {
    let root = tempfile::tempdir().unwrap();
    let m = Manager::new(root.path().join("pods"));
    let p = pod(
        json!([{"name": "scratch", "emptyDir": {}}]),
        json!([{"name": "scratch", "mountPath": "/a", "subPath": "escape"}]),
    );
    let v = m
        .setup(&p, &mut objects(), &NodeFacts::default())
        .await
        .unwrap();
    std::os::unix::fs::symlink("/etc", v["scratch"].path.join("escape")).unwrap();
    let c = &p.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container_mounts(m.pods_root(), &p, c, &v, &HashMap::new()).unwrap_err(),
        "failed to prepare subPath for volumeMount \"scratch\" of container \"c\""
    );
    let mut c2 = c.clone();
    c2.volume_mounts.as_mut().unwrap()[0].sub_path = None;
    c2.volume_mounts.as_mut().unwrap()[0].sub_path_expr = Some("logs/$(POD)".into());
    let env = HashMap::from([("POD".to_string(), "p".to_string())]);
    let mounts = container_mounts(m.pods_root(), &p, &c2, &v, &env).unwrap();
    assert!(v["scratch"].path.join("logs/p").is_dir());
    assert!(mounts[0].host_path.ends_with("volume-subpaths/scratch/c/0"));
    assert_eq!(
        container_mounts(m.pods_root(), &p, &c2, &v, &HashMap::new()).unwrap_err(),
        "missing value for POD"
    );
    m.teardown("u1");
    assert!(!root.path().join("pods/u1").exists());
}
