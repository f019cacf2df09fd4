//! Tables for `v1.Volume` and its many volume sources, split from the pod
//! spec only to keep files small.
//!
//! Field numbers, JSON names and types follow upstream's `generated.proto`
//! and `types.go`; `omit` marks Go value fields tagged `omitempty`, whose zero
//! value means unset (see [`super::schema::Card`]).

use super::schema::{inline, map, msg, omit, opt, rep, Msg, BOOL, I32, I64, QTY, STR};
use super::{meta, pod};

/// `core/v1.PersistentVolumeClaimSpec`.
pub static PERSISTENT_VOLUME_CLAIM_SPEC: Msg = Msg {
    name: "core/v1.PersistentVolumeClaimSpec",
    fields: &[
        rep(1, "accessModes", STR),
        opt(4, "selector", msg(&meta::LABEL_SELECTOR)),
        opt(2, "resources", msg(&VOLUME_RESOURCE_REQUIREMENTS)),
        omit(3, "volumeName", STR),
        opt(5, "storageClassName", STR),
        opt(6, "volumeMode", STR),
        opt(7, "dataSource", msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        opt(8, "dataSourceRef", msg(&TYPED_OBJECT_REFERENCE)),
        opt(9, "volumeAttributesClassName", STR),
    ],
};

/// `core/v1.Volume`.
pub static VOLUME: Msg = Msg {
    name: "core/v1.Volume",
    fields: &[opt(1, "name", STR), inline(2, msg(&VOLUME_SOURCE))],
};

/// `core/v1.VolumeResourceRequirements`.
pub static VOLUME_RESOURCE_REQUIREMENTS: Msg = Msg {
    name: "core/v1.VolumeResourceRequirements",
    fields: &[map(1, "limits", QTY), map(2, "requests", QTY)],
};

/// `core/v1.TypedLocalObjectReference`.
pub static TYPED_LOCAL_OBJECT_REFERENCE: Msg = Msg {
    name: "core/v1.TypedLocalObjectReference",
    fields: &[
        opt(1, "apiGroup", STR),
        opt(2, "kind", STR),
        opt(3, "name", STR),
    ],
};

/// `core/v1.TypedObjectReference`.
pub static TYPED_OBJECT_REFERENCE: Msg = Msg {
    name: "core/v1.TypedObjectReference",
    fields: &[
        opt(1, "apiGroup", STR),
        opt(2, "kind", STR),
        opt(3, "name", STR),
        opt(4, "namespace", STR),
    ],
};

/// `core/v1.VolumeSource`.
pub static VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.VolumeSource",
    fields: &[
        opt(1, "hostPath", msg(&HOST_PATH_VOLUME_SOURCE)),
        opt(2, "emptyDir", msg(&EMPTY_DIR_VOLUME_SOURCE)),
        opt(
            3,
            "gcePersistentDisk",
            msg(&GCE_PERSISTENT_DISK_VOLUME_SOURCE),
        ),
        opt(
            4,
            "awsElasticBlockStore",
            msg(&AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE),
        ),
        opt(5, "gitRepo", msg(&GIT_REPO_VOLUME_SOURCE)),
        opt(6, "secret", msg(&SECRET_VOLUME_SOURCE)),
        opt(7, "nfs", msg(&NFS_VOLUME_SOURCE)),
        opt(8, "iscsi", msg(&ISCSI_VOLUME_SOURCE)),
        opt(9, "glusterfs", msg(&GLUSTERFS_VOLUME_SOURCE)),
        opt(
            10,
            "persistentVolumeClaim",
            msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE),
        ),
        opt(11, "rbd", msg(&RBD_VOLUME_SOURCE)),
        opt(12, "flexVolume", msg(&FLEX_VOLUME_SOURCE)),
        opt(13, "cinder", msg(&CINDER_VOLUME_SOURCE)),
        opt(14, "cephfs", msg(&CEPH_FS_VOLUME_SOURCE)),
        opt(15, "flocker", msg(&FLOCKER_VOLUME_SOURCE)),
        opt(16, "downwardAPI", msg(&DOWNWARD_API_VOLUME_SOURCE)),
        opt(17, "fc", msg(&FC_VOLUME_SOURCE)),
        opt(18, "azureFile", msg(&AZURE_FILE_VOLUME_SOURCE)),
        opt(19, "configMap", msg(&CONFIG_MAP_VOLUME_SOURCE)),
        opt(
            20,
            "vsphereVolume",
            msg(&VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE),
        ),
        opt(21, "quobyte", msg(&QUOBYTE_VOLUME_SOURCE)),
        opt(22, "azureDisk", msg(&AZURE_DISK_VOLUME_SOURCE)),
        opt(
            23,
            "photonPersistentDisk",
            msg(&PHOTON_PERSISTENT_DISK_VOLUME_SOURCE),
        ),
        opt(26, "projected", msg(&PROJECTED_VOLUME_SOURCE)),
        opt(24, "portworxVolume", msg(&PORTWORX_VOLUME_SOURCE)),
        opt(25, "scaleIO", msg(&SCALE_IO_VOLUME_SOURCE)),
        opt(27, "storageos", msg(&STORAGE_OS_VOLUME_SOURCE)),
        opt(28, "csi", msg(&CSI_VOLUME_SOURCE)),
        opt(29, "ephemeral", msg(&EPHEMERAL_VOLUME_SOURCE)),
        opt(30, "image", msg(&IMAGE_VOLUME_SOURCE)),
    ],
};

/// `core/v1.HostPathVolumeSource`.
pub static HOST_PATH_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.HostPathVolumeSource",
    fields: &[opt(1, "path", STR), opt(2, "type", STR)],
};

/// `core/v1.EmptyDirVolumeSource`.
pub static EMPTY_DIR_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.EmptyDirVolumeSource",
    fields: &[
        omit(1, "medium", STR),
        opt(2, "sizeLimit", QTY),
        opt(3, "mode", I32),
    ],
};

/// `core/v1.GCEPersistentDiskVolumeSource`.
pub static GCE_PERSISTENT_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.GCEPersistentDiskVolumeSource",
    fields: &[
        opt(1, "pdName", STR),
        omit(2, "fsType", STR),
        omit(3, "partition", I32),
        omit(4, "readOnly", BOOL),
    ],
};

/// `core/v1.AWSElasticBlockStoreVolumeSource`.
pub static AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.AWSElasticBlockStoreVolumeSource",
    fields: &[
        opt(1, "volumeID", STR),
        omit(2, "fsType", STR),
        omit(3, "partition", I32),
        omit(4, "readOnly", BOOL),
    ],
};

/// `core/v1.GitRepoVolumeSource`.
pub static GIT_REPO_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.GitRepoVolumeSource",
    fields: &[
        opt(1, "repository", STR),
        omit(2, "revision", STR),
        omit(3, "directory", STR),
    ],
};

/// `core/v1.SecretVolumeSource`.
pub static SECRET_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.SecretVolumeSource",
    fields: &[
        omit(1, "secretName", STR),
        rep(2, "items", msg(&KEY_TO_PATH)),
        opt(3, "defaultMode", I32),
        opt(4, "optional", BOOL),
        opt(5, "defaultUser", I64),
    ],
};

/// `core/v1.NFSVolumeSource`.
pub static NFS_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.NFSVolumeSource",
    fields: &[
        opt(1, "server", STR),
        opt(2, "path", STR),
        omit(3, "readOnly", BOOL),
    ],
};

/// `core/v1.ISCSIVolumeSource`.
pub static ISCSI_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.ISCSIVolumeSource",
    fields: &[
        opt(1, "targetPortal", STR),
        opt(2, "iqn", STR),
        opt(3, "lun", I32),
        omit(4, "iscsiInterface", STR),
        omit(5, "fsType", STR),
        omit(6, "readOnly", BOOL),
        rep(7, "portals", STR),
        omit(8, "chapAuthDiscovery", BOOL),
        omit(11, "chapAuthSession", BOOL),
        opt(10, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
        opt(12, "initiatorName", STR),
    ],
};

/// `core/v1.GlusterfsVolumeSource`.
pub static GLUSTERFS_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.GlusterfsVolumeSource",
    fields: &[
        opt(1, "endpoints", STR),
        opt(2, "path", STR),
        omit(3, "readOnly", BOOL),
    ],
};

/// `core/v1.PersistentVolumeClaimVolumeSource`.
pub static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.PersistentVolumeClaimVolumeSource",
    fields: &[opt(1, "claimName", STR), omit(2, "readOnly", BOOL)],
};

/// `core/v1.RBDVolumeSource`.
pub static RBD_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.RBDVolumeSource",
    fields: &[
        rep(1, "monitors", STR),
        opt(2, "image", STR),
        omit(3, "fsType", STR),
        omit(4, "pool", STR),
        omit(5, "user", STR),
        omit(6, "keyring", STR),
        opt(7, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
        omit(8, "readOnly", BOOL),
    ],
};

/// `core/v1.FlexVolumeSource`.
pub static FLEX_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.FlexVolumeSource",
    fields: &[
        opt(1, "driver", STR),
        omit(2, "fsType", STR),
        opt(3, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
        omit(4, "readOnly", BOOL),
        map(5, "options", STR),
    ],
};

/// `core/v1.CinderVolumeSource`.
pub static CINDER_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.CinderVolumeSource",
    fields: &[
        opt(1, "volumeID", STR),
        omit(2, "fsType", STR),
        omit(3, "readOnly", BOOL),
        opt(4, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
    ],
};

/// `core/v1.CephFSVolumeSource`.
pub static CEPH_FS_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.CephFSVolumeSource",
    fields: &[
        rep(1, "monitors", STR),
        omit(2, "path", STR),
        omit(3, "user", STR),
        omit(4, "secretFile", STR),
        opt(5, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
        omit(6, "readOnly", BOOL),
    ],
};

/// `core/v1.FlockerVolumeSource`.
pub static FLOCKER_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.FlockerVolumeSource",
    fields: &[omit(1, "datasetName", STR), omit(2, "datasetUUID", STR)],
};

/// `core/v1.DownwardAPIVolumeSource`.
pub static DOWNWARD_API_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.DownwardAPIVolumeSource",
    fields: &[
        rep(1, "items", msg(&DOWNWARD_API_VOLUME_FILE)),
        opt(2, "defaultMode", I32),
        opt(3, "defaultUser", I64),
    ],
};

/// `core/v1.FCVolumeSource`.
pub static FC_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.FCVolumeSource",
    fields: &[
        rep(1, "targetWWNs", STR),
        opt(2, "lun", I32),
        omit(3, "fsType", STR),
        omit(4, "readOnly", BOOL),
        rep(5, "wwids", STR),
    ],
};

/// `core/v1.AzureFileVolumeSource`.
pub static AZURE_FILE_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.AzureFileVolumeSource",
    fields: &[
        opt(1, "secretName", STR),
        opt(2, "shareName", STR),
        omit(3, "readOnly", BOOL),
    ],
};

/// `core/v1.ConfigMapVolumeSource`.
pub static CONFIG_MAP_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.ConfigMapVolumeSource",
    fields: &[
        inline(1, msg(&pod::LOCAL_OBJECT_REFERENCE)),
        rep(2, "items", msg(&KEY_TO_PATH)),
        opt(3, "defaultMode", I32),
        opt(4, "optional", BOOL),
        opt(5, "defaultUser", I64),
    ],
};

/// `core/v1.VsphereVirtualDiskVolumeSource`.
pub static VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.VsphereVirtualDiskVolumeSource",
    fields: &[
        opt(1, "volumePath", STR),
        omit(2, "fsType", STR),
        omit(3, "storagePolicyName", STR),
        omit(4, "storagePolicyID", STR),
    ],
};

/// `core/v1.QuobyteVolumeSource`.
pub static QUOBYTE_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.QuobyteVolumeSource",
    fields: &[
        opt(1, "registry", STR),
        opt(2, "volume", STR),
        omit(3, "readOnly", BOOL),
        omit(4, "user", STR),
        omit(5, "group", STR),
        omit(6, "tenant", STR),
    ],
};

/// `core/v1.AzureDiskVolumeSource`.
pub static AZURE_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.AzureDiskVolumeSource",
    fields: &[
        opt(1, "diskName", STR),
        opt(2, "diskURI", STR),
        opt(3, "cachingMode", STR),
        opt(4, "fsType", STR),
        opt(5, "readOnly", BOOL),
        opt(6, "kind", STR),
    ],
};

/// `core/v1.PhotonPersistentDiskVolumeSource`.
pub static PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.PhotonPersistentDiskVolumeSource",
    fields: &[opt(1, "pdID", STR), omit(2, "fsType", STR)],
};

/// `core/v1.ProjectedVolumeSource`.
pub static PROJECTED_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.ProjectedVolumeSource",
    fields: &[
        rep(1, "sources", msg(&VOLUME_PROJECTION)),
        opt(2, "defaultMode", I32),
        opt(3, "defaultUser", I64),
    ],
};

/// `core/v1.PortworxVolumeSource`.
pub static PORTWORX_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.PortworxVolumeSource",
    fields: &[
        opt(1, "volumeID", STR),
        omit(2, "fsType", STR),
        omit(3, "readOnly", BOOL),
    ],
};

/// `core/v1.ScaleIOVolumeSource`.
pub static SCALE_IO_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.ScaleIOVolumeSource",
    fields: &[
        opt(1, "gateway", STR),
        opt(2, "system", STR),
        opt(3, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
        omit(4, "sslEnabled", BOOL),
        omit(5, "protectionDomain", STR),
        omit(6, "storagePool", STR),
        omit(7, "storageMode", STR),
        omit(8, "volumeName", STR),
        omit(9, "fsType", STR),
        omit(10, "readOnly", BOOL),
    ],
};

/// `core/v1.StorageOSVolumeSource`.
pub static STORAGE_OS_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.StorageOSVolumeSource",
    fields: &[
        omit(1, "volumeName", STR),
        omit(2, "volumeNamespace", STR),
        omit(3, "fsType", STR),
        omit(4, "readOnly", BOOL),
        opt(5, "secretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
    ],
};

/// `core/v1.CSIVolumeSource`.
pub static CSI_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.CSIVolumeSource",
    fields: &[
        opt(1, "driver", STR),
        opt(2, "readOnly", BOOL),
        opt(3, "fsType", STR),
        map(4, "volumeAttributes", STR),
        opt(5, "nodePublishSecretRef", msg(&pod::LOCAL_OBJECT_REFERENCE)),
    ],
};

/// `core/v1.EphemeralVolumeSource`.
pub static EPHEMERAL_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.EphemeralVolumeSource",
    fields: &[opt(
        1,
        "volumeClaimTemplate",
        msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE),
    )],
};

/// `core/v1.ImageVolumeSource`.
pub static IMAGE_VOLUME_SOURCE: Msg = Msg {
    name: "core/v1.ImageVolumeSource",
    fields: &[omit(1, "reference", STR), omit(2, "pullPolicy", STR)],
};

/// `core/v1.KeyToPath`.
pub static KEY_TO_PATH: Msg = Msg {
    name: "core/v1.KeyToPath",
    fields: &[
        opt(1, "key", STR),
        opt(2, "path", STR),
        opt(3, "mode", I32),
        opt(4, "user", I64),
    ],
};

/// `core/v1.DownwardAPIVolumeFile`.
pub static DOWNWARD_API_VOLUME_FILE: Msg = Msg {
    name: "core/v1.DownwardAPIVolumeFile",
    fields: &[
        opt(1, "path", STR),
        opt(2, "fieldRef", msg(&pod::OBJECT_FIELD_SELECTOR)),
        opt(3, "resourceFieldRef", msg(&pod::RESOURCE_FIELD_SELECTOR)),
        opt(4, "mode", I32),
        opt(5, "user", I64),
    ],
};

/// `core/v1.VolumeProjection`.
pub static VOLUME_PROJECTION: Msg = Msg {
    name: "core/v1.VolumeProjection",
    fields: &[
        opt(1, "secret", msg(&SECRET_PROJECTION)),
        opt(2, "downwardAPI", msg(&DOWNWARD_API_PROJECTION)),
        opt(3, "configMap", msg(&CONFIG_MAP_PROJECTION)),
        opt(
            4,
            "serviceAccountToken",
            msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION),
        ),
        opt(
            5,
            "clusterTrustBundle",
            msg(&CLUSTER_TRUST_BUNDLE_PROJECTION),
        ),
        opt(6, "podCertificate", msg(&POD_CERTIFICATE_PROJECTION)),
    ],
};

/// `core/v1.PersistentVolumeClaimTemplate`.
pub static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Msg = Msg {
    name: "core/v1.PersistentVolumeClaimTemplate",
    fields: &[
        opt(1, "metadata", msg(&meta::OBJECT_META)),
        opt(2, "spec", msg(&PERSISTENT_VOLUME_CLAIM_SPEC)),
    ],
};

/// `core/v1.SecretProjection`.
pub static SECRET_PROJECTION: Msg = Msg {
    name: "core/v1.SecretProjection",
    fields: &[
        inline(1, msg(&pod::LOCAL_OBJECT_REFERENCE)),
        rep(2, "items", msg(&KEY_TO_PATH)),
        opt(4, "optional", BOOL),
    ],
};

/// `core/v1.DownwardAPIProjection`.
pub static DOWNWARD_API_PROJECTION: Msg = Msg {
    name: "core/v1.DownwardAPIProjection",
    fields: &[rep(1, "items", msg(&DOWNWARD_API_VOLUME_FILE))],
};

/// `core/v1.ConfigMapProjection`.
pub static CONFIG_MAP_PROJECTION: Msg = Msg {
    name: "core/v1.ConfigMapProjection",
    fields: &[
        inline(1, msg(&pod::LOCAL_OBJECT_REFERENCE)),
        rep(2, "items", msg(&KEY_TO_PATH)),
        opt(4, "optional", BOOL),
    ],
};

/// `core/v1.ServiceAccountTokenProjection`.
pub static SERVICE_ACCOUNT_TOKEN_PROJECTION: Msg = Msg {
    name: "core/v1.ServiceAccountTokenProjection",
    fields: &[
        omit(1, "audience", STR),
        opt(2, "expirationSeconds", I64),
        opt(3, "path", STR),
        opt(4, "user", I64),
    ],
};

/// `core/v1.ClusterTrustBundleProjection`.
pub static CLUSTER_TRUST_BUNDLE_PROJECTION: Msg = Msg {
    name: "core/v1.ClusterTrustBundleProjection",
    fields: &[
        opt(1, "name", STR),
        opt(2, "signerName", STR),
        opt(3, "labelSelector", msg(&meta::LABEL_SELECTOR)),
        opt(5, "optional", BOOL),
        opt(4, "path", STR),
        opt(6, "user", I64),
    ],
};

/// `core/v1.PodCertificateProjection`.
pub static POD_CERTIFICATE_PROJECTION: Msg = Msg {
    name: "core/v1.PodCertificateProjection",
    fields: &[
        omit(1, "signerName", STR),
        omit(2, "keyType", STR),
        opt(3, "maxExpirationSeconds", I32),
        omit(4, "credentialBundlePath", STR),
        omit(5, "keyPath", STR),
        omit(6, "certificateChainPath", STR),
        map(7, "userAnnotations", STR),
        opt(8, "user", I64),
    ],
};
