# One-off generator for the fixture corpus (kept for reference; the fixtures are checked in).
import os, textwrap, json
ROOT = os.path.join(os.path.dirname(__file__), '..', 'fixtures')

def deploy(name, image, labels=None, port=8000, kind='Deployment', init_image=None, env=None, ns=None):
    labels = labels or {'app': name}
    lab = '\n'.join(f'        {k}: {v}' for k, v in labels.items())
    sel = '\n'.join(f'      {k}: {v}' for k, v in labels.items())
    init = ''
    if init_image:
        init = f'''      initContainers:
      - name: init
        image: {init_image}
'''
    envs = ''
    if env:
        envs = '        env:\n' + ''.join(f'        - name: {k}\n          value: {v}\n' for k, v in env.items())
    nsline = f'\n  namespace: {ns}' if ns else ''
    return f'''apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}{nsline}
spec:
  selector:
    matchLabels:
{sel}
  template:
    metadata:
      labels:
{lab}
    spec:
{init}      containers:
      - name: {name}
        image: {image}
{envs}        ports:
        - containerPort: {port}
'''

def service(name, labels=None, port=80, target=8000):
    labels = labels or {'app': name}
    sel = '\n'.join(f'    {k}: {v}' for k, v in labels.items())
    return f'''apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
{sel}
  ports:
  - port: {port}
    targetPort: {target}
'''

DOCKERFILE = 'FROM alpine:3.19\nWORKDIR /app\nCOPY . .\nCMD ["./run.sh"]\n'

def fx(name, tiltfile, files=None):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'Tiltfile'), 'w') as f:
        f.write(textwrap.dedent(tiltfile).lstrip())
    for p, c in (files or {}).items():
        fp = os.path.join(d, p)
        os.makedirs(os.path.dirname(fp), exist_ok=True)
        with open(fp, 'w') as f:
            f.write(c)

def y(*docs):
    return '---\n'.join(docs)

# ---------------------------------------------------------------------------------- k8s
fx('k8s_port_forwards', '''
    # Every port_forwards form Tilt accepts.
    k8s_yaml(['a.yaml', 'b.yaml', 'c.yaml'])
    k8s_resource('a', port_forwards=8000)
    k8s_resource('b', port_forwards=['9000', '9001:8001', '0.0.0.0:9002:8002'])
    k8s_resource('c', port_forwards=[
        port_forward(7000, 80, name='web', link_path='/ui'),
        port_forward(7001, host='127.0.0.1'),
        7002,
    ])
    ''', {'a.yaml': deploy('a', 'nginx'), 'b.yaml': deploy('b', 'nginx'), 'c.yaml': deploy('c', 'nginx')})

fx('k8s_resource_links_labels', '''
    k8s_yaml('app.yaml')
    k8s_resource('app', links=['localhost:8000', link('https://example.com/docs', 'docs')], labels='frontend')
    k8s_resource('app', labels=['web', 'frontend'])
    ''', {'app.yaml': deploy('app', 'nginx')})

fx('k8s_resource_deps_trigger', '''
    k8s_yaml(['db.yaml', 'api.yaml'])
    k8s_resource('api', resource_deps=['db'], trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False)
    k8s_resource('db', trigger_mode=TRIGGER_MODE_AUTO)
    ''', {'db.yaml': deploy('db', 'postgres:16', port=5432), 'api.yaml': deploy('api', 'nginx')})

fx('k8s_resource_objects', '''
    # Group non-workload objects into a new resource and into an existing workload.
    k8s_yaml('all.yaml')
    k8s_resource(new_name='config', objects=['app-config:configmap', 'app-secret:Secret:default'])
    k8s_resource('app', objects=['app-sa'])
    ''', {'all.yaml': y(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  k: v\n',
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secret\nstringData:\n  password: hunter22\n',
        'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app-sa\n',
        deploy('app', 'nginx'))})

fx('k8s_resource_rename', '''
    k8s_yaml('app.yaml')
    k8s_resource('app', new_name='frontend', port_forwards='8080:80')
    ''', {'app.yaml': y(deploy('app', 'nginx'), service('app'))})

fx('k8s_pod_readiness_discovery', '''
    k8s_yaml('app.yaml')
    k8s_resource('app', pod_readiness='ignore', discovery_strategy='selectors-only',
                 extra_pod_selectors=[{'app': 'app'}, {'tier': 'web', 'team': 'a'}])
    ''', {'app.yaml': deploy('app', 'nginx')})

fx('k8s_uncategorized', '''
    # Objects that belong to no workload end up in `uncategorized`.
    k8s_yaml('infra.yaml')
    k8s_yaml('app.yaml')
    ''', {'infra.yaml': y(
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: dev\n',
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dev\ndata:\n  mode: dev\n',
        'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names:\n    kind: Widget\n    plural: widgets\n  scope: Namespaced\n  versions: []\n'),
        'app.yaml': y(deploy('app', 'nginx'), service('app'))})

fx('k8s_job_cronjob', '''
    k8s_yaml('jobs.yaml')
    ''', {'jobs.yaml': y(
        'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: m\n        image: busybox\n        command: ["true"]\n',
        'apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: "0 0 * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: n\n            image: busybox\n')})

fx('k8s_duplicate_names', '''
    # Two workloads named `app`: resources get the shortest unique name.
    k8s_yaml('app.yaml')
    ''', {'app.yaml': y(deploy('app', 'nginx'), deploy('app', 'nginx', kind='StatefulSet'),
                        deploy('app', 'nginx', kind='DaemonSet', ns='other'), deploy('app', 'nginx', kind='DaemonSet', ns='third'))})

fx('k8s_kind_image_json_path', '''
    k8s_kind('UselessMachine', image_json_path='{.spec.image}')
    docker_build('um-image', '.')
    k8s_yaml('crd.yaml')
    ''', {'crd.yaml': 'apiVersion: tilt.dev/v1beta1\nkind: UselessMachine\nmetadata:\n  name: bobo\nspec:\n  image: um-image\n  nonImage: um-image\n',
          'Dockerfile': DOCKERFILE})

fx('k8s_kind_image_object', '''
    k8s_kind('Server', api_version='example.com/v1', image_object={'json_path': '{.spec.runtime}', 'repo_field': 'repo', 'tag_field': 'tag'}, pod_readiness='wait')
    docker_build('srv', '.')
    k8s_yaml('server.yaml')
    ''', {'server.yaml': 'apiVersion: example.com/v1\nkind: Server\nmetadata:\n  name: s1\nspec:\n  runtime:\n    repo: srv\n    tag: latest\n',
          'Dockerfile': DOCKERFILE})

fx('k8s_kind_workload', '''
    # k8s_kind without image paths just marks the kind as a workload.
    k8s_kind('Environment')
    k8s_yaml('env.yaml')
    ''', {'env.yaml': 'apiVersion: example.com/v1\nkind: Environment\nmetadata:\n  name: dev-env\nspec: {}\n'})

fx('workload_to_resource_function', '''
    def name_it(id):
        return id.namespace + '-' + id.name + '-' + id.kind.lower()
    workload_to_resource_function(name_it)
    k8s_yaml('app.yaml')
    k8s_resource('default-web-deployment', port_forwards=8000)
    ''', {'app.yaml': y(deploy('web', 'nginx'), deploy('worker', 'busybox'))})

fx('init_containers_image', '''
    docker_build('migrator', '.')
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'nginx', init_image='migrator'), 'Dockerfile': DOCKERFILE})

fx('match_in_env_vars', '''
    docker_build('worker-image', '.', match_in_env_vars=True)
    k8s_yaml('controller.yaml')
    ''', {'controller.yaml': deploy('controller', 'nginx', env={'WORKER_IMAGE': 'worker-image'}), 'Dockerfile': DOCKERFILE})

fx('image_tag_exact', '''
    # A ref with a tag only matches that tag; without a tag any tag matches.
    docker_build('myimg:1.0', '.')
    docker_build('other', '.')
    k8s_yaml('app.yaml')
    ''', {'app.yaml': y(deploy('v1', 'myimg:1.0'), deploy('v2', 'myimg:2.0'), deploy('o', 'docker.io/library/other:3')),
          'Dockerfile': DOCKERFILE})

fx('k8s_yaml_forms', '''
    # Paths, a list of paths, a Blob, and a `kind: List`.
    k8s_yaml('a.yaml')
    k8s_yaml(['b.yaml', 'list.yaml'])
    k8s_yaml(blob("""
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: from-blob
    data:
      mode: "0755"
      octal: 0755
      on: yes
    """))
    ''', {'a.yaml': deploy('a', 'nginx'), 'b.yaml': deploy('b', 'nginx'),
          'list.yaml': 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: l1\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: l2\n'})

fx('k8s_secrets', '''
    k8s_yaml('secret.yaml')
    ''', {'secret.yaml': 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  token: c3VwZXJzZWNyZXQ=\n  short: YWI=\nstringData:\n  password: correct-horse\n'})

fx('filter_yaml', '''
    app, rest = filter_yaml('all.yaml', labels={'tier': 'app'})
    cms, others = filter_yaml(rest, kind='configmap', name='^keep')
    k8s_yaml(app)
    k8s_yaml(cms)
    print(str(others))
    ''', {'all.yaml': y(deploy('web', 'nginx', labels={'app': 'web', 'tier': 'app'}).replace('metadata:\n  name: web', 'metadata:\n  name: web\n  labels:\n    tier: app', 1),
                        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\n',
                        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: drop-me\n')})

fx('k8s_custom_deploy', '''
    k8s_custom_deploy(
        'cd-app',
        apply_cmd='kubectl apply -f app.yaml -o yaml',
        delete_cmd=['kubectl', 'delete', '-f', 'app.yaml'],
        deps=['app.yaml', 'src'],
        image_selector='nginx',
        live_update=[sync('src', '/usr/share/nginx/html')],
        apply_env={'FOO': 'bar'},
    )
    k8s_custom_deploy('cd-two', apply_cmd='./apply.sh', delete_cmd='./delete.sh', deps=[],
                      container_selector='main', live_update=[sync('.', '/app')], apply_dir='scripts')
    k8s_resource('cd-app', port_forwards=8080)
    ''', {'app.yaml': deploy('cd-app', 'nginx'), 'src/index.html': 'hi\n'})

fx('allow_k8s_contexts', '''
    allow_k8s_contexts(['gke_prod_cluster'])
    allow_k8s_contexts('other')
    print(k8s_context(), k8s_namespace())
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'nginx'), 'host.json': json.dumps({'context': 'gke_prod_cluster', 'namespace': 'team-a'})})

# ---------------------------------------------------------------------------------- images
fx('docker_build_params', '''
    docker_build(
        'gcr.io/acme/api', 'api',
        build_args={'VERSION': '1.2', 'DEBUG': 'true'},
        dockerfile='docker/api.Dockerfile',
        target='dev',
        ssh='default',
        secret=['id=npm,src=.npmrc'],
        network='host',
        extra_tag=['acme/api:dev'],
        cache_from=['gcr.io/acme/api:cache'],
        pull=True,
        platform='linux/amd64',
        extra_hosts=['db:10.0.0.5'],
        entrypoint='python -m api',
        container_args=['--port', '8000'],
    )
    k8s_yaml('api.yaml')
    ''', {'api.yaml': deploy('api', 'gcr.io/acme/api'), 'api/main.py': 'print(1)\n',
          'docker/api.Dockerfile': 'ARG VERSION=0\nFROM python:3.12 AS base\nFROM base AS dev\nCOPY . .\n'})

fx('docker_build_contents', '''
    docker_build('inline', '.', dockerfile_contents="""
    FROM busybox
    COPY . /src
    """, entrypoint=['/bin/sh', '-c', 'sleep infinity'])
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('inline-app', 'inline')})

fx('docker_build_only_ignore', '''
    docker_build('web', '.', only=['./src', 'package.json'], ignore=['src/**/*.test.js', 'tmp'])
    k8s_yaml('web.yaml')
    ''', {'web.yaml': deploy('web', 'web'), 'Dockerfile': DOCKERFILE, '.dockerignore': '# comment\nnode_modules\n*.log\n!keep.log\n'})

fx('base_image_dep', '''
    # The app's Dockerfile builds FROM another Tilt-built image: both are targets of `app`.
    docker_build('company/base', 'base', live_update=[])
    docker_build('company/app', 'app', build_args={'BASE': 'company/base'},
                 live_update=[sync('app/src', '/app/src'), sync('base/content', '/content')])
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'company/app'), 'base/Dockerfile': 'FROM alpine\nCOPY content /content\n',
          'app/Dockerfile': 'ARG BASE=nothing\nFROM ${BASE}\nCOPY src /app/src\n'})

fx('custom_build_basic', '''
    custom_build('gcr.io/acme/cb', 'docker build -t $EXPECTED_REF .', ['src', 'Dockerfile'],
                 tag='dev', env={'DOCKER_BUILDKIT': '1'}, dir='.', ignore=['src/gen'],
                 entrypoint=['/app/server'])
    k8s_yaml('cb.yaml')
    ''', {'cb.yaml': deploy('cb', 'gcr.io/acme/cb'), 'Dockerfile': DOCKERFILE})

fx('custom_build_outputs_ref', '''
    custom_build('remote-img', ['./build.sh', '--push'], deps=['src'], outputs_image_ref_to='ref.txt',
                 skips_local_docker=True)
    custom_build('local-img', 'make image', deps=['Makefile'], disable_push=True, image_deps=['remote-img'])
    k8s_yaml('app.yaml')
    ''', {'app.yaml': y(deploy('remote', 'remote-img'), deploy('local', 'local-img'))})

fx('custom_build_live_update_only', '''
    # command=':' + live_update: no build, no ImageMap; the YAML image is left alone.
    custom_build('nginx', ':', ['html'], live_update=[sync('html', '/usr/share/nginx/html')])
    k8s_yaml('nginx.yaml')
    ''', {'nginx.yaml': deploy('nginx', 'nginx'), 'html/index.html': 'hi\n'})

fx('live_update_steps', '''
    docker_build('lu', '.', live_update=[
        initial_sync(),
        fall_back_on(['package.json', 'yarn.lock']),
        sync('./src', '/app/src'),
        sync('static', '/app/static'),
        run('yarn build', trigger=['./src/build.js']),
        run(['touch', '/tmp/restart'], echo_off=True),
    ])
    k8s_yaml('lu.yaml')
    ''', {'lu.yaml': deploy('lu', 'lu'), 'Dockerfile': DOCKERFILE})

fx('default_registry', '''
    default_registry('localhost:5000', host_from_cluster='registry:5000')
    docker_build('gcr.io/acme/app', '.')
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'gcr.io/acme/app'), 'Dockerfile': DOCKERFILE})

fx('unused_image_warning', '''
    docker_build('used', '.')
    docker_build('unused', '.')
    docker_build('quiet', '.')
    update_settings(suppress_unused_image_warnings=['quiet'])
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'used'), 'Dockerfile': DOCKERFILE})

# ---------------------------------------------------------------------------------- local
fx('local_resource_basic', '''
    local_resource('build', 'make build', deps=['src', 'Makefile'], ignore=['src/*.tmp'])
    ''', {'Makefile': 'build:\n\ttrue\n'})

fx('local_resource_serve', '''
    local_resource(
        'web',
        serve_cmd='python -m http.server 8000',
        serve_env={'PORT': '8000'},
        serve_dir='public',
        readiness_probe=probe(period_secs=5, http_get=http_get_action(port=8000, path='/healthz')),
        links=['http://localhost:8000'],
    )
    ''')

fx('local_resource_probes', '''
    local_resource('exec-probe', cmd=['echo', 'build'], serve_cmd=['sleep', '1000'],
                   readiness_probe=probe(exec=exec_action(['test', '-f', '/tmp/ready']), initial_delay_secs=2, timeout_secs=3,
                                         success_threshold=2, failure_threshold=5))
    local_resource('tcp-probe', serve_cmd='nc -l 9999',
                   readiness_probe=probe(tcp_socket=tcp_socket_action(9999, host='127.0.0.1')))
    local_resource('no-serve', cmd='true', readiness_probe=probe(tcp_socket=tcp_socket_action(1)))
    ''')

fx('local_resource_options', '''
    local_resource('gen', cmd='./gen.sh', dir='scripts', env={'MODE': 'dev', 'N': 3},
                   trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False, allow_parallel=True,
                   labels=['tools'], links=[link('localhost:3000', 'app')])
    local_resource('lint', 'npm run lint', resource_deps=['gen'], labels='tools')
    test('unit', 'go test ./...', deps=['go.mod'])
    ''')

# ---------------------------------------------------------------------------------- compose
COMPOSE = '''services:
  redis:
    image: redis:7
    ports:
      - "6379:6379"
  web:
    build: .
    image: acme/web
    ports:
      - "8080:80"
      - target: 443
        published: 8443
  tools:
    image: busybox
    profiles: ["tools"]
'''
fx('docker_compose_basic', '''
    docker_compose('docker-compose.yml')
    ''', {'docker-compose.yml': COMPOSE})

fx('docker_compose_dc_resource', '''
    docker_compose(['docker-compose.yml'], project_name='Acme Shop', profiles=['tools'], wait=True, env_file='.env')
    docker_build('acme/web', '.', live_update=[sync('src', '/app/src'), restart_container()])
    dc_resource('web', labels=['frontend'], resource_deps=['cache'], trigger_mode=TRIGGER_MODE_MANUAL,
                links=['http://localhost:8080/admin'])
    dc_resource('redis', infer_links=False, new_name='cache')
    ''', {'docker-compose.yml': COMPOSE, 'Dockerfile': DOCKERFILE, '.env': 'A=1\n'})

# ---------------------------------------------------------------------------------- host / files
fx('local_builtin', '''
    out = local('echo hello')
    print('got: ' + str(out).strip())
    local('echo quiet', quiet=True)
    local(['printf', '%s', 'argv'], echo_off=True)
    print(str(local('echo $GREETING-$TILT_HOST', env={'GREETING': 'hi'})).strip())
    print(str(local('pwd', dir='sub', quiet=True)).strip().endswith('/sub'))
    print(str(local('cat', stdin='from stdin', quiet=True)))
    ''', {'sub/.keep': ''})

fx('read_files', '''
    print(str(read_file('data.txt')).strip())
    print(read_file('missing.txt', default='fallback'))
    cfg = read_json('config.json')
    print(cfg['name'], cfg['replicas'] + 1)
    print(read_json('nope.json', default={'a': 1}))
    y = read_yaml('values.yaml')
    print(y['image']['tag'], y['enabled'])
    print(len(read_yaml_stream('stream.yaml')))
    ''', {'data.txt': 'some data\n', 'config.json': '{"name": "svc", "replicas": 2}',
          'values.yaml': 'image:\n  tag: v1\nenabled: true\n', 'stream.yaml': 'a: 1\n---\nb: 2\n---\n# empty\n'})

fx('encode_decode', '''
    obj = {'name': 'x', 'ports': [80, 443], 'nested': {'ok': True, 'ratio': 0.5}}
    print(str(encode_json(obj)))
    print(str(encode_yaml(obj)))
    print(str(encode_yaml_stream([{'a': 1}, {'b': 2}])))
    print(decode_json('{"k": [1, 2, {"z": null}]}'))
    print(decode_yaml('a: [1, 2]\\nb: {c: d}'))
    print(decode_yaml_stream('x: 1\\n---\\ny: 2'))
    b = blob('text')
    print(type(b), str(b) + '!', len(b))
    ''')

fx('os_module', '''
    print(os.getenv('FIXTURE_VAR'), os.getenv('NOT_SET', 'dflt'), os.getenv('NOT_SET'))
    os.putenv('ADDED', 'yes')
    print(os.environ['ADDED'], 'ADDED' in os.environ, os.environ.get('MISSING', 'm'))
    os.environ['VIA_INDEX'] = '1'
    print(str(local('echo $ADDED $VIA_INDEX', quiet=True)).strip())
    os.unsetenv('ADDED')
    print('ADDED' in os.environ, os.name)
    print(os.path.basename('/a/b/c.txt'), os.path.dirname('/a/b/c.txt'), os.path.join('a', 'b', 'c'))
    print(os.path.exists('Tiltfile'), os.path.exists('nope'))
    print(os.path.relpath(os.path.abspath('sub/x'), os.path.abspath('.')))
    print(os.getcwd() == config.main_dir)
    print(shlex.quote("it's"), shlex.quote('plain'))
    ''', {'env': 'FIXTURE_VAR=from-env\n', 'sub/x': ''})

fx('listdir_watch_file', '''
    for f in listdir('files'):
        print(os.path.basename(f))
    print(len(listdir('files', recursive=True)))
    watch_file('extra.cfg')
    watch_file('watched-dir')
    ''', {'files/a.txt': 'a', 'files/b.txt': 'b', 'files/nested/c.txt': 'c', 'extra.cfg': 'x'})

fx('config_parse', '''
    config.define_string_list('to-run', args=True, usage='resources to run')
    config.define_string('env')
    config.define_bool('debug')
    config.define_object('extra', usage='json')
    cfg = config.parse()
    print(cfg)
    print(config.tilt_subcommand, os.path.basename(config.main_path))
    local_resource('a', 'echo a')
    local_resource('b', 'echo b')
    config.set_enabled_resources(cfg.get('to-run', []))
    ''', {'args': '--debug\n--env\nstaging\n--extra={"k": [1]}\na\n', 'tilt_config.json': '{"env": "dev", "to-run": ["b"]}\n'})

fx('config_enabled_resources', '''
    local_resource('db', 'echo db')
    local_resource('api', 'echo api', resource_deps=['db'])
    local_resource('web', 'echo web', resource_deps=['api'])
    local_resource('docs', 'echo docs')
    config.set_enabled_resources(['web'])
    ''')

fx('args_as_resources', '''
    # Without config.parse, Tiltfile args name the resources to enable.
    local_resource('one', 'echo 1')
    local_resource('two', 'echo 2')
    ''', {'args': 'two\n'})

fx('include_and_load', '''
    load('lib/helpers.star', 'make_local', VERSION='version')
    include('services/Tiltfile')
    print(__name__, os.path.basename(__file__), VERSION)
    make_local('from-lib')
    ''', {'lib/helpers.star': 'version = "1.0"\ndef make_local(name):\n    # relative paths resolve against the executing file (the Tiltfile calling this), as in Tilt\n    local_resource(name, "echo hi", deps=["helpers.star"])\nprint("loading", __name__)\n',
          'services/Tiltfile': 'print("included", __name__)\nk8s_yaml("svc.yaml")\n',
          'services/svc.yaml': deploy('svc', 'nginx')})

fx('load_ext', '''
    load('ext://hello', 'hello')
    load('ext://nested/deep', 'deep')
    hello('world')
    print(deep)
    ''')

fx('extension_repo_file', '''
    v1alpha1.extension_repo(name='local-repo', url='file://' + os.path.abspath('repo'), load_host='myhost')
    load('ext://myhost/greeter', 'greet')
    greet()
    ''', {'repo/greeter/Tiltfile': 'def greet():\n    print("greetings from the local repo")\n'})

fx('load_dynamic', '''
    m = load_dynamic('lib.star')
    print(sorted(m.keys()), m['answer'])
    ''', {'lib.star': 'answer = 42\n_private = 1\ndef f():\n    return 1\n'})

fx('kustomize', '''
    # kustomize() falls back to `kubectl kustomize` when no kustomize binary is on PATH (canned
    # output in host.json so the fixture does not depend on the machine's kubectl).
    k8s_yaml(kustomize('overlay'))
    ''', {'host.json': open(os.path.join(ROOT, 'kustomize', 'host.json')).read(), 'overlay/kustomization.yaml': 'resources:\n- deploy.yaml\nnamePrefix: dev-\ncommonLabels:\n  env: dev\n',
          'overlay/deploy.yaml': deploy('app', 'nginx')})

fx('settings', '''
    update_settings(max_parallel_updates=5, k8s_upsert_timeout_secs=60, k8s_server_side_apply=True)
    ci_settings(k8s_grace_period='10s', timeout='10m', readiness_timeout='2m')
    secret_settings(disable_scrub=True)
    version_settings(check_updates=False, constraint='>=0.33.0')
    analytics_settings(False)
    set_team('team-123')
    enable_feature('snapshots')
    disable_feature('cluster_refresh')
    docker_prune_settings(disable=True, max_age_mins=60, keep_recent=1)
    experimental_analytics_report({'k': 'v'})
    disable_snapshots()
    trigger_mode(TRIGGER_MODE_MANUAL)
    local_resource('r', 'echo r')
    ''')

fx('tiltignore', '''
    watch_settings(ignore=['*.log', 'tmp/'])
    watch_settings(ignore='dist')
    docker_build('app', '.')
    k8s_yaml('app.yaml')
    local_resource('lr', 'true', deps=['src'])
    ''', {'.tiltignore': '# global\nnode_modules\n**/*.pyc\n', 'app.yaml': deploy('app', 'app'), 'Dockerfile': DOCKERFILE})

fx('subcommand_sys', '''
    print(config.tilt_subcommand)
    if config.tilt_subcommand == 'ci':
        ci_settings(timeout='5m')
    print(type(sys.argv), os.path.basename(config.main_dir))
    ''', {'host.json': json.dumps({'subcommand': 'ci'})})

fx('v1alpha1_objects', '''
    v1alpha1.config_map(name='feature-flags', data={'beta': 'true'}, labels={'team': 'a'})
    v1alpha1.cmd(name='hello', args=['echo', 'hi'], dir='/tmp', env=['A=1'])
    v1alpha1.file_watch(name='watch-src', watched_paths=['/src'], ignores=[v1alpha1.ignore_def(base_path='/src', patterns=['*.tmp'])])
    v1alpha1.ui_button(name='deploy-btn', text='Deploy', location=v1alpha1.ui_component_location(component_id='web', component_type='Resource'), icon_name='rocket')
    ''')

fx('struct_and_language', '''
    s = struct(name='x', ports=[1, 2])
    print(s.name, s.ports)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    print(fib(10))
    total = 0
    for i in range(5):
        total += i
    if total > 5:
        print('total', total)
    print(set([1, 2, 2]), f'{total}', {'a': 1}.get('a'))
    x = [1]
    x = x + [2]
    print(x)
    ''')

fx('exit_early', '''
    local_resource('before', 'echo before')
    exit('stopping here')
    local_resource('after', 'echo after')
    ''')

fx('warn_and_print', '''
    print('hello', 'world')
    warn('this is a warning')
    local_resource('r', 'true')
    ''')

fx('mixed_project', '''
    # A realistic project: k8s + local + compose-free.
    load('ext://hello', 'hello')
    docker_build('acme/api', 'api', live_update=[sync('api', '/srv')])
    docker_build('acme/worker', 'worker')
    k8s_yaml(['k8s/api.yaml', 'k8s/worker.yaml', 'k8s/redis.yaml'])
    k8s_resource('api', port_forwards=['8080:80'], resource_deps=['redis'], labels=['backend'])
    k8s_resource('worker', resource_deps=['api'], labels=['backend'])
    k8s_resource('redis', labels=['infra'])
    local_resource('codegen', 'make gen', deps=['proto'], labels=['tools'])
    ''', {'api/Dockerfile': DOCKERFILE, 'worker/Dockerfile': DOCKERFILE,
          'k8s/api.yaml': y(deploy('api', 'acme/api'), service('api')),
          'k8s/worker.yaml': deploy('worker', 'acme/worker'),
          'k8s/redis.yaml': y(deploy('redis', 'redis:7', port=6379), service('redis', port=6379, target=6379))})

# ---------------------------------------------------------------------------------- errors
fx('error_syntax', '''
    docker_build('a', '.')
    k8s_yaml('x.yaml'
    print('never')
    ''')
fx('while_loop', '''
    i = 0
    n = 0
    while i < 3:
        i += 1
        if i == 2:
            continue
        n += i

    def count(s):
        k = 0
        while k < len(s) and s[k] != '=':
            k += 1
        return k

    print(i, n, count('ab=c'))
    fail('the line of this error is kept')
    ''')
fx('error_runtime_stack', '''
    load('lib.star', 'outer')
    outer()
    ''', {'lib.star': 'def inner(d):\n    return d["missing"]\n\ndef outer():\n    return inner({})\n'})
fx('error_fail_in_include', '''
    include('sub/Tiltfile')
    ''', {'sub/Tiltfile': 'fail("this environment is not supported")\n'})
fx('error_bad_arg', '''
    docker_build(123, '.')
    ''')
fx('error_bad_kwarg', '''
    local_resource('x', cmd='true', no_such_param=1)
    ''')
fx('error_k8s_resource_missing_name', '''
    k8s_resource(port_forwards=8000)
    ''')
fx('error_unknown_workload', '''
    k8s_yaml('app.yaml')
    k8s_resource('nope', port_forwards=8000)
    ''', {'app.yaml': deploy('app', 'nginx')})
fx('error_prod_context', '''
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'nginx'), 'host.json': json.dumps({'context': 'gke_acme_us-east1_prod'})})
fx('error_restart_container_k8s', '''
    docker_build('app', '.', live_update=[sync('.', '/app'), restart_container()])
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'app'), 'Dockerfile': DOCKERFILE})
fx('error_unused_step', '''
    s = sync('.', '/app')
    local_resource('x', 'true')
    ''')
fx('error_step_order', '''
    docker_build('app', '.', live_update=[run('make'), sync('.', '/app')])
    ''', {'Dockerfile': DOCKERFILE})
fx('error_duplicate_yaml', '''
    k8s_yaml('app.yaml')
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'nginx')})
fx('error_circular_load', '''
    load('a.star', 'a')
    ''', {'a.star': 'load("b.star", "b")\na = 1\n', 'b.star': 'load("a.star", "a")\nb = 2\n'})
fx('error_local_fails', '''
    local('echo out; echo err >&2; exit 3')
    ''')
fx('error_helm_missing', '''
    k8s_yaml(helm('chart', name='release', namespace='dev', values=['values.yaml'], set=['a=b']))
    ''', {'chart/Chart.yaml': 'apiVersion: v2\nname: chart\nversion: 0.1.0\n', 'values.yaml': 'a: 1\n',
          'host.json': '{"run_unknown": false}'})
fx('error_config_unknown_flag', '''
    config.define_string('env')
    config.parse()
    ''', {'args': '--nope\nx\n'})
fx('error_name_conflict', '''
    k8s_yaml('app.yaml')
    local_resource('app', 'true')
    ''', {'app.yaml': deploy('app', 'nginx')})
fx('error_unknown_dep', '''
    local_resource('a', 'true', resource_deps=['ghost'])
    ''')
fx('error_duplicate_image', '''
    docker_build('app', '.')
    docker_build('app', '.')
    ''', {'Dockerfile': DOCKERFILE})
fx('error_only_glob', '''
    docker_build('app', '.', only=['src/*.py'])
    ''', {'Dockerfile': DOCKERFILE})
fx('error_yaml_parse', '''
    k8s_yaml('bad.yaml')
    ''', {'bad.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n'})
fx('error_missing_file', '''
    read_file('does-not-exist.txt')
    ''')
fx('error_ext_missing', '''
    load('ext://not_there', 'x')
    ''')

fx('k8s_uncategorized_configured', '''
    # `uncategorized` can be configured like any resource.
    k8s_yaml('infra.yaml')
    k8s_resource('uncategorized', labels=['infra'], resource_deps=['setup'])
    local_resource('setup', 'echo setup')
    ''', {'infra.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: dev\n'})

fx('workload_to_resource_function_print', '''
    def name_it(id):
        print('naming', id.name)
        return 'svc-' + id.name
    workload_to_resource_function(name_it)
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('web', 'nginx')})

fx('dialect_features', '''
    # Go-Starlark/Tilt idioms that must keep working.
    print('before load')
    load('lib.star', 'helper')
    x = 1
    x = 2  # global reassignment
    def counter():
        total = 0
        for i in range(3):
            total += i
        return total
    print(helper(), x, counter())
    print('%s-%d' % ('a', 3), 'x{}y'.format(1), 'A,B'.split(','), ' s '.strip())
    d = {'k': 1}
    d.update({'j': 2})
    print(sorted(d.keys()), [i * 2 for i in range(3) if i != 1], {k: v for k, v in d.items()})
    print(type(1), type(''), type([]), type({}), type(None), type(blob('x')), type(port_forward(1)))
    print(str(1.5), 7 // 2, -7 % 3, 8 if False else 9, 'yes' if 'k' in d else 'no')
    print(any([False, True]), all([]), max(1, 5), min([3, 2]), reversed([1, 2]), enumerate(['a']))
    print(hasattr(struct(a=1), 'a'), getattr(struct(a=1), 'a'), dir(link('x'))[:1])
    ''', {'lib.star': 'def helper():\n    return "helped"\n'})

fx('docker_compose_interpolation', '''
    # ${VAR}, ${VAR:-default} and $$ from .env and the environment; the .env is a config file.
    docker_compose('compose.yaml')
    docker_build('acme/api', '.')
    ''', {'compose.yaml': 'services:\n  api:\n    image: ${REGISTRY:-acme}/api\n    ports:\n      - "${API_PORT}:80"\n    command: echo $$HOME\n  db:\n    image: postgres:${PG_VERSION-15}\n    ports:\n      - "${DB_PORT:-5432}:5432"\n',
          '.env': '# ports\nAPI_PORT=8081\n', 'Dockerfile': DOCKERFILE, 'env': 'PG_VERSION=16\n'})

fx('error_kustomize_missing', '''
    k8s_yaml(kustomize('overlay'))
    ''', {'overlay/kustomization.yaml': 'resources: []\n', 'host.json': '{"run_unknown": false}'})

fx('live_update_paths_outside_base', '''
    # Sync/trigger/fall_back_on paths outside the Tiltfile's directory stay relative (`..`), like
    # Go's filepath.Rel.
    docker_build('app', '.', live_update=[
        fall_back_on('../shared/go.mod'),
        sync('../shared', '/shared'),
        run('make', trigger='../shared/Makefile'),
    ])
    k8s_yaml('app.yaml')
    ''', {'app.yaml': deploy('app', 'app'), 'Dockerfile': DOCKERFILE})

fx('doc_param_names', '''
    # Tilt's docs and its Go code name some parameters differently; both work.
    print(str(read_file(file_path='a.txt')).strip(), str(read_file(paths='a.txt')).strip())
    print(read_json(file_path='b.json'), read_yaml(file_path='c.yaml', default=None))
    watch_file(file_path='a.txt')
    print(len(listdir(directory='.')) > 0)
    docker_build('app', '.', live_update=[fall_back_on(files=['a.txt']), sync('.', '/app')])
    k8s_yaml('app.yaml')
    ''', {'a.txt': 'a\n', 'b.json': '{"b": 1}', 'c.yaml': 'c: 2\n', 'app.yaml': deploy('app', 'app'), 'Dockerfile': DOCKERFILE})
