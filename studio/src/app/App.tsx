import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createBrowserRouter, RouterProvider } from 'react-router';
import { ApiError } from '../lib/envelope';
import { LoginPage, RequireSession } from '../features/auth';
import { HomePage, TypePage } from '../features/home';
import { NotFound } from './NotFound';
import { Root } from './Root';
import { Shell } from './Shell';

const design = () => import('../features/design');
const consoleFeature = () => import('../features/console');

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A 4xx will not change by asking again (a 401 was already refreshed and retried).
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});

// Deep links: every path is under /studio/ (the server answers index.html for all of them).
const router = createBrowserRouter(
  [
    { path: '/', element: <Root /> },
    { path: '/login', element: <LoginPage /> },
    {
      path: '/t/:tenant',
      element: <RequireSession />,
      children: [
        {
          element: <Shell />,
          children: [
            { index: true, element: <HomePage /> },
            { path: 'types/:type', element: <TypePage /> },
            { path: 'entities/:type', lazy: async () => ({ Component: (await consoleFeature()).ListPage }) },
            { path: 'entities/:type/new', lazy: async () => ({ Component: (await consoleFeature()).CreatePage }) },
            { path: 'entities/:type/:id', lazy: async () => ({ Component: (await consoleFeature()).EntityPage }) },
            {
              // The designer (graph, layout, editors) is loaded when an admin opens it.
              path: 'design',
              lazy: async () => ({ Component: (await design()).DraftProvider }),
              children: [
                { index: true, lazy: async () => ({ Component: (await design()).DesignPage }) },
                { path: 'types/:type', lazy: async () => ({ Component: (await design()).DesignTypePage }) },
                { path: 'types/:type/workflow', lazy: async () => ({ Component: (await design()).WorkflowPage }) },
                { path: 'publish', lazy: async () => ({ Component: (await design()).PublishPage }) },
              ],
            },
          ],
        },
      ],
    },
    { path: '*', element: <NotFound /> },
  ],
  { basename: '/studio' },
);

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
