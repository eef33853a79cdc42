"""docker/k8s/: both kustomizations render with `kubectl kustomize`, every object is valid for Kubernetes 1.30
(kubernetes-validate, strict), and they hold together: probes, ports, selectors, security, the GPU overlay."""

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

kubernetes_validate = pytest.importorskip('kubernetes_validate', reason='pip install -r requirements-dev.txt brings it')

from bert_serving.server.ventilator import DRAIN_TIMEOUT_S  # noqa: E402  (after the skip above)

DOCKER = Path(__file__).resolve().parents[1] / 'docker'
K8S = DOCKER / 'k8s'
KUBERNETES_VERSION = '1.30'
LABELS = {'app.kubernetes.io/name': 'bert-serving'}


def render(kustomization: str) -> dict[str, dict]:
    """``{kind/name: object}`` of ``kubectl kustomize docker/k8s/<kustomization>``."""
    kubectl = shutil.which('kubectl')
    if kubectl is None:
        pytest.skip('kubectl is not installed (make test installs Debian\'s kubernetes-client)')
    result = subprocess.run([kubectl, 'kustomize', str(K8S / kustomization)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return {f'{item["kind"]}/{item["metadata"]["name"]}': item for item in yaml.safe_load_all(result.stdout)}


@pytest.fixture(scope='module', params=['base', 'gpu', 'queue-depth'])
def rendered(request) -> dict[str, dict]:
    return render(request.param)


@pytest.fixture(scope='module')
def base() -> dict[str, dict]:
    return render('base')


def server_container(objects: dict) -> dict:
    (container,) = objects['Deployment/bert-serving']['spec']['template']['spec']['containers']
    return container


def test_every_object_is_valid_for_kubernetes_1_30(rendered):
    assert set(rendered) == {'Deployment/bert-serving', 'Service/bert-serving-zmq', 'Service/bert-serving-http',
                             'HorizontalPodAutoscaler/bert-serving', 'PodDisruptionBudget/bert-serving'}
    for name, item in rendered.items():
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_misspelt_field(base):
    broken = copy.deepcopy(base['Deployment/bert-serving'])
    broken['spec']['template']['spec']['containers'][0]['readinesProbe'] = {'httpGet': {'path': '/ready'}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_pods_serve_the_image_ports_and_probe_readiness_and_health(rendered):
    container = server_container(rendered)
    ports = {port['name']: port['containerPort'] for port in container['ports']}
    entrypoint = (DOCKER / 'entrypoint.sh').read_text()
    assert re.search(rf'-port {ports["port"]} -port_out {ports["port-out"]} ', entrypoint)
    assert f'BERT_SERVING_HTTP_PORT:-{ports["http"]}' in entrypoint
    for dockerfile in ('Dockerfile', 'Dockerfile.cpu'):
        assert f'EXPOSE {ports["port"]} {ports["port-out"]} {ports["http"]}' in (DOCKER / dockerfile).read_text()
    assert container['readinessProbe']['httpGet'] == {'path': '/ready', 'port': 'http'}
    assert container['livenessProbe']['httpGet'] == {'path': '/health', 'port': 'http'}
    assert container['args'][0].isdigit()  # the worker count, as the entrypoint takes it


def test_pods_run_unprivileged_on_a_read_only_root_with_the_model_at_slash_model(rendered):
    pod = rendered['Deployment/bert-serving']['spec']['template']['spec']
    container = server_container(rendered)
    user = re.search(r'^USER (\d+)$', (DOCKER / 'Dockerfile.cpu').read_text(), flags=re.MULTILINE).group(1)
    assert pod['securityContext']['runAsNonRoot'] is True and pod['securityContext']['runAsUser'] == int(user)
    assert container['securityContext']['readOnlyRootFilesystem'] is True
    assert container['securityContext']['allowPrivilegeEscalation'] is False
    mounts = {mount['mountPath']: mount for mount in container['volumeMounts']}
    volumes = {volume['name']: volume for volume in pod['volumes']}
    assert mounts['/model']['readOnly'] is True and 'emptyDir' in volumes[mounts['/tmp']['name']]
    assert {'cpu', 'memory'} <= set(container['resources']['requests']) & set(container['resources']['limits'])


def test_grace_period_outlasts_the_pause_and_the_drain(rendered):
    pod = rendered['Deployment/bert-serving']['spec']['template']['spec']
    pause = int(server_container(rendered)['lifecycle']['preStop']['exec']['command'][-1])
    assert pod['terminationGracePeriodSeconds'] > pause + DRAIN_TIMEOUT_S + 10  # 10 s to stop the workers


def test_services_autoscaler_and_budget_find_the_pods(rendered):
    deployment = rendered['Deployment/bert-serving']
    pod_labels = deployment['spec']['template']['metadata']['labels']
    assert deployment['spec']['selector']['matchLabels'] == LABELS and LABELS.items() <= pod_labels.items()
    zmq, http = rendered['Service/bert-serving-zmq']['spec'], rendered['Service/bert-serving-http']['spec']
    assert zmq['clusterIP'] == 'None'  # headless: one address per pod for the multi-server client
    assert {(port['port'], port['targetPort']) for port in zmq['ports']} == {(5555, 'port'), (5556, 'port-out')}
    assert http.get('type', 'ClusterIP') == 'ClusterIP' and http['ports'][0]['targetPort'] == 'http'
    assert zmq['selector'] == http['selector'] == LABELS
    assert rendered['PodDisruptionBudget/bert-serving']['spec']['selector']['matchLabels'] == LABELS
    autoscaler = rendered['HorizontalPodAutoscaler/bert-serving']['spec']
    assert autoscaler['scaleTargetRef'] == {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': 'bert-serving'}
    assert autoscaler['minReplicas'] >= 2
    annotations = deployment['spec']['template']['metadata']['annotations']
    assert annotations['prometheus.io/path'] == '/metrics' and annotations['prometheus.io/port'] == '8125'


def test_the_base_scales_on_cpu_and_the_queue_depth_overlay_on_the_queue_gauge(base):
    (metric,) = base['HorizontalPodAutoscaler/bert-serving']['spec']['metrics']
    assert metric == {'type': 'Resource', 'resource': {'name': 'cpu', 'target': {'type': 'Utilization',
                                                                                  'averageUtilization': 70}}}
    (metric,) = render('queue-depth')['HorizontalPodAutoscaler/bert-serving']['spec']['metrics']
    # tests/test_image.py checks that a served image's /metrics has this gauge.
    assert metric['type'] == 'Pods' and metric['pods']['metric']['name'] == 'bert_server_queued_rows'


def test_gpu_overlay_asks_for_a_gpu_and_the_gpu_image(base):
    gpu = render('gpu')
    container, base_container = server_container(gpu), server_container(base)
    assert base_container['image'] == 'bert-serving:cpu' and container['image'] == 'bert-serving:gpu'
    assert container['resources']['limits']['nvidia.com/gpu'] == 1
    assert 'nvidia.com/gpu' not in base_container['resources']['limits']
    tolerations = gpu['Deployment/bert-serving']['spec']['template']['spec']['tolerations']
    assert any(toleration['key'] == 'nvidia.com/gpu' for toleration in tolerations)
    # Everything else is the base's.
    for key in ('ports', 'readinessProbe', 'livenessProbe', 'securityContext', 'volumeMounts', 'args'):
        assert container[key] == base_container[key]
