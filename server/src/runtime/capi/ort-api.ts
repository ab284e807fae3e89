/**
 * The part of ONNX Runtime's C API (onnxruntime_c_api.h) this binding calls: each function's
 * index in struct OrtApi, its C signature as koffi parses it, and its TypeScript type; and
 * the enum values it passes. Nothing here loads the library.
 */
import type { KoffiFunc } from 'koffi';

/** A native pointer: koffi 3 passes pointers as bigints, and NULL as null. */
export type Ptr = bigint;
export type Status = Ptr | null;
/** A one-element array that koffi fills with an output argument. */
export type Out<T> = [T | null];

type RunWithBinding = (session: Ptr, runOptions: Ptr | null, binding: Ptr) => Status;

/** The functions we call, typed as koffi passes them. */
export interface OrtApi {
  CreateStatus: (code: number, message: string) => Status;
  GetErrorCode: (status: Ptr) => number;
  GetErrorMessage: (status: Ptr) => string;
  CreateEnv: (level: number, logId: string, out: Out<Ptr>) => Status;
  CreateSession: (env: Ptr, path: string, options: Ptr, out: Out<Ptr>) => Status;
  CreateSessionOptions: (out: Out<Ptr>) => Status;
  SetSessionGraphOptimizationLevel: (options: Ptr, level: number) => Status;
  SetIntraOpNumThreads: (options: Ptr, threads: number) => Status;
  SessionGetInputCount: (session: Ptr, out: Out<number>) => Status;
  SessionGetOutputCount: (session: Ptr, out: Out<number>) => Status;
  SessionGetInputTypeInfo: (session: Ptr, index: number, out: Out<Ptr>) => Status;
  SessionGetOutputTypeInfo: (session: Ptr, index: number, out: Out<Ptr>) => Status;
  SessionGetInputName: (session: Ptr, index: number, allocator: Ptr, out: Out<Ptr>) => Status;
  SessionGetOutputName: (session: Ptr, index: number, allocator: Ptr, out: Out<Ptr>) => Status;
  CreateRunOptions: (out: Out<Ptr>) => Status;
  CreateTensorAsOrtValue: (
    allocator: Ptr,
    shape: BigInt64Array,
    rank: number,
    type: number,
    out: Out<Ptr>,
  ) => Status;
  CreateTensorWithDataAsOrtValue: (
    memoryInfo: Ptr,
    data: Ptr,
    bytes: number,
    shape: BigInt64Array,
    rank: number,
    type: number,
    out: Out<Ptr>,
  ) => Status;
  GetTensorMutableData: (value: Ptr, out: Out<Ptr>) => Status;
  CastTypeInfoToTensorInfo: (typeInfo: Ptr, out: Out<Ptr>) => Status;
  GetTensorElementType: (tensorInfo: Ptr, out: Out<number>) => Status;
  GetDimensionsCount: (tensorInfo: Ptr, out: Out<number>) => Status;
  GetDimensions: (tensorInfo: Ptr, dims: BigInt64Array, rank: number) => Status;
  CreateMemoryInfo: (
    name: string,
    allocatorType: number,
    deviceId: number,
    memType: number,
    out: Out<Ptr>,
  ) => Status;
  CreateCpuMemoryInfo: (allocatorType: number, memType: number, out: Out<Ptr>) => Status;
  AllocatorFree: (allocator: Ptr, p: Ptr) => Status;
  GetAllocatorWithDefaultOptions: (out: Out<Ptr>) => Status;
  ReleaseStatus: (status: Ptr) => void;
  ReleaseMemoryInfo: (memoryInfo: Ptr) => void;
  ReleaseSession: (session: Ptr) => void;
  ReleaseValue: (value: Ptr) => void;
  ReleaseRunOptions: (runOptions: Ptr) => void;
  ReleaseTypeInfo: (typeInfo: Ptr) => void;
  ReleaseSessionOptions: (options: Ptr) => void;
  CreateAllocator: (session: Ptr, memoryInfo: Ptr, out: Out<Ptr>) => Status;
  ReleaseAllocator: (allocator: Ptr) => void;
  RunWithBinding: KoffiFunc<RunWithBinding>;
  CreateIoBinding: (session: Ptr, out: Out<Ptr>) => Status;
  ReleaseIoBinding: (binding: Ptr) => void;
  BindInput: (binding: Ptr, name: string, value: Ptr) => Status;
  BindOutput: (binding: Ptr, name: string, value: Ptr) => Status;
  ClearBoundInputs: (binding: Ptr) => void;
  ClearBoundOutputs: (binding: Ptr) => void;
  AddRunConfigEntry: (runOptions: Ptr, key: string, value: string) => Status;
  SynchronizeBoundOutputs: (binding: Ptr) => Status;
  SessionOptionsAppendExecutionProvider_CUDA_V2: (options: Ptr, cudaOptions: Ptr) => Status;
  CreateCUDAProviderOptions: (out: Out<Ptr>) => Status;
  UpdateCUDAProviderOptions: (
    cudaOptions: Ptr,
    keys: readonly string[],
    values: readonly string[],
    n: number,
  ) => Status;
  ReleaseCUDAProviderOptions: (cudaOptions: Ptr) => void;
  MemoryInfoGetDeviceType: (memoryInfo: Ptr, out: Out<number>) => void;
  SessionGetMemoryInfoForInputs: (session: Ptr, out: BigUint64Array, n: number) => Status;
}

/** The ORT_API_VERSION of the header the indices below were counted from. */
export const HEADER_API_VERSION = 24;

/**
 * Each function's index in struct OrtApi and its C signature, counted (one per
 * ORT_API2_STATUS / ORT_CLASS_RELEASE / ORT_API_T / plain function-pointer member, in order)
 * from onnxruntime_c_api.h with ORT_API_VERSION 24 (ONNX Runtime 1.24), as vendored by the
 * Go module github.com/yalue/onnxruntime_go v1.27.0. Opaque handles are `void *`.
 */
export const TABLE: { readonly [K in keyof OrtApi]: readonly [index: number, signature: string] } = {
  CreateStatus: [0, 'void *(int code, const char *msg)'],
  GetErrorCode: [1, 'int (void *status)'],
  GetErrorMessage: [2, 'const char *(void *status)'],
  CreateEnv: [3, 'void *(int level, const char *logid, _Out_ void **out)'],
  CreateSession: [7, 'void *(void *env, const char *path, void *options, _Out_ void **out)'],
  CreateSessionOptions: [10, 'void *(_Out_ void **out)'],
  SetSessionGraphOptimizationLevel: [23, 'void *(void *options, int level)'],
  SetIntraOpNumThreads: [24, 'void *(void *options, int threads)'],
  SessionGetInputCount: [30, 'void *(void *session, _Out_ size_t *out)'],
  SessionGetOutputCount: [31, 'void *(void *session, _Out_ size_t *out)'],
  SessionGetInputTypeInfo: [33, 'void *(void *session, size_t index, _Out_ void **out)'],
  SessionGetOutputTypeInfo: [34, 'void *(void *session, size_t index, _Out_ void **out)'],
  SessionGetInputName: [36, 'void *(void *session, size_t index, void *allocator, _Out_ void **out)'],
  SessionGetOutputName: [37, 'void *(void *session, size_t index, void *allocator, _Out_ void **out)'],
  CreateRunOptions: [39, 'void *(_Out_ void **out)'],
  CreateTensorAsOrtValue: [
    48,
    'void *(void *allocator, const int64_t *shape, size_t rank, int type, _Out_ void **out)',
  ],
  CreateTensorWithDataAsOrtValue: [
    49,
    'void *(void *info, void *data, size_t bytes, const int64_t *shape, size_t rank, int type, _Out_ void **out)',
  ],
  GetTensorMutableData: [51, 'void *(void *value, _Out_ void **out)'],
  CastTypeInfoToTensorInfo: [55, 'void *(void *typeInfo, _Out_ void **out)'],
  GetTensorElementType: [60, 'void *(void *info, _Out_ int *out)'],
  GetDimensionsCount: [61, 'void *(void *info, _Out_ size_t *out)'],
  GetDimensions: [62, 'void *(void *info, int64_t *dims, size_t rank)'],
  CreateMemoryInfo: [68, 'void *(const char *name, int type, int id, int memType, _Out_ void **out)'],
  CreateCpuMemoryInfo: [69, 'void *(int type, int memType, _Out_ void **out)'],
  AllocatorFree: [76, 'void *(void *allocator, void *p)'],
  GetAllocatorWithDefaultOptions: [78, 'void *(_Out_ void **out)'],
  ReleaseStatus: [93, 'void (void *status)'],
  ReleaseMemoryInfo: [94, 'void (void *info)'],
  ReleaseSession: [95, 'void (void *session)'],
  ReleaseValue: [96, 'void (void *value)'],
  ReleaseRunOptions: [97, 'void (void *options)'],
  ReleaseTypeInfo: [98, 'void (void *typeInfo)'],
  ReleaseSessionOptions: [100, 'void (void *options)'],
  CreateAllocator: [131, 'void *(void *session, void *info, _Out_ void **out)'],
  ReleaseAllocator: [132, 'void (void *allocator)'],
  RunWithBinding: [133, 'void *(void *session, void *runOptions, void *binding)'],
  CreateIoBinding: [134, 'void *(void *session, _Out_ void **out)'],
  ReleaseIoBinding: [135, 'void (void *binding)'],
  BindInput: [136, 'void *(void *binding, const char *name, void *value)'],
  BindOutput: [137, 'void *(void *binding, const char *name, void *value)'],
  ClearBoundInputs: [141, 'void (void *binding)'],
  ClearBoundOutputs: [142, 'void (void *binding)'],
  AddRunConfigEntry: [165, 'void *(void *options, const char *key, const char *value)'],
  SynchronizeBoundOutputs: [203, 'void *(void *binding)'],
  SessionOptionsAppendExecutionProvider_CUDA_V2: [204, 'void *(void *options, void *cudaOptions)'],
  CreateCUDAProviderOptions: [205, 'void *(_Out_ void **out)'],
  UpdateCUDAProviderOptions: [
    206,
    'void *(void *cudaOptions, const char **keys, const char **values, size_t n)',
  ],
  ReleaseCUDAProviderOptions: [208, 'void (void *cudaOptions)'],
  MemoryInfoGetDeviceType: [225, 'void (void *info, _Out_ int *out)'],
  // Since ONNX Runtime 1.23: fills one OrtMemoryInfo pointer (the session's) per input.
  SessionGetMemoryInfoForInputs: [380, 'void *(void *session, void *out, size_t n)'],
};

/** ONNXTensorElementDataType values. */
export const ELEMENT = { float32: 1, int64: 7, float16: 10 } as const;
/** OrtAllocatorType and OrtMemType values. */
export const ORT_DEVICE_ALLOCATOR = 0;
export const ORT_MEM_TYPE_DEFAULT = 0;
/** OrtMemoryInfoDeviceType: GPU. */
export const ORT_DEVICE_GPU = 1;
