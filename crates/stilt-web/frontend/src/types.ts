// The tilt.dev/v1alpha1 objects the UI reads. Fields are optional: the server omits empty ones.

export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  resourceVersion?: string;
  ownerReferences?: { kind: string; name: string }[];
}

export interface ApiObject {
  apiVersion?: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: any;
  status?: any;
  data?: Record<string, string>;
}

export interface BuildStage {
  name: string;
  startTime?: string;
  finishTime?: string;
}

export interface BuildTerminated {
  error?: string;
  warnings?: string[];
  startTime?: string;
  finishTime?: string;
  spanID?: string;
  isCrashRebuild?: boolean;
  stages?: BuildStage[];
}

export interface UIResourceStatus {
  lastDeployTime?: string;
  triggerMode?: number;
  buildHistory?: BuildTerminated[];
  currentBuild?: { startTime?: string; spanID?: string };
  pendingBuildSince?: string;
  hasPendingChanges?: boolean;
  endpointLinks?: { url?: string; name?: string }[];
  k8sResourceInfo?: { podName?: string; podStatus?: string; podRestarts?: number };
  localResourceInfo?: { pid?: number; isTest?: boolean };
  runtimeStatus?: string;
  updateStatus?: string;
  specs?: { id?: string; type?: string; hasLiveUpdate?: boolean }[];
  queued?: boolean;
  order?: number;
  disableStatus?: { enabledCount?: number; disabledCount?: number; state?: string };
  waiting?: { reason?: string; on?: { kind?: string; name?: string }[] };
}

export interface UIResource extends ApiObject {
  status?: UIResourceStatus;
}

export interface UIInputSpec {
  name: string;
  label?: string;
  text?: { defaultValue?: string; placeholder?: string };
  bool?: { defaultValue?: boolean; trueString?: string; falseString?: string };
  hidden?: { value: string };
  choice?: { choices?: string[] };
}

export interface UIButton extends ApiObject {
  spec: {
    location: { componentID: string; componentType: string };
    text: string;
    iconName?: string;
    iconSVG?: string;
    disabled?: boolean;
    requiresConfirmation?: boolean;
    inputs?: UIInputSpec[];
  };
  status?: { lastClickedAt?: string };
}

export const TILTFILE = "(Tiltfile)";
export const DEPS_ANNOTATION = "stilt.dev/resource-deps";
export const RESOURCE_ANNOTATION = "tilt.dev/resource";
